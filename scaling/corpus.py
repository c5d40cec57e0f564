"""Corpus -> documents: which files make up a corpus, and the text documents they hold.

A corpus is a list of entries; each entry is a file, a folder (read recursively) or a glob pattern
(``~/data/*.jsonl``, ``books/**/*.txt``). An empty list means the embedded default corpus: the Python
standard library source that ships with the interpreter (no download, ever).

What counts as a document depends on the file's name (its extension, case-insensitive):

- ``.jsonl`` / ``.ndjson`` / ``.json`` (each optionally ``.gz`` or ``.zst``): JSON Lines, one document
  per line, the string in ``text_field``. C4 (``c4-train.00000-of-01024.json.gz``) and Dolma
  (``*.jsonl.zst``) name their JSON Lines shards ``.json.gz`` / ``.json.zst``;
- ``.parquet``: one document per row, the string column ``text_field``, read in record batches;
- a folder written by HF ``datasets`` (``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``: Arrow
  files with ``state.json`` or ``dataset_dict.json``) is one corpus entry, read with
  ``datasets.load_from_disk`` (the optional ``[datasets]`` extra): one document per row of the string
  column ``text_field``, every split in the order saved;
- plain UTF-8 text, one document per file, for the extensions in `TEXT_SUFFIXES` (prose and markup:
  ``.txt .text .md .markdown .rst .adoc .org .tex .html .htm .xml``; source code: ``.py .pyi .c .h .cc
  .cpp .hpp .java .js .ts .go .rs .rb .sh``), each optionally ``.gz`` or ``.zst``. Bytes that are not
  UTF-8 become U+FFFD; files that look binary (a NUL byte in their first 8 KiB) are skipped.

**Unknown extensions are never guessed.** A file named as a corpus entry must have one of these
extensions, else it is refused with one line listing the formats (`FORMATS`): ``.bz2``, ``.xz``,
``.zip``, ``.tar``, ``.parquet.gz``, ``.bin``, ``.csv``, a name without an extension... A folder or a glob
takes the files of known formats and prints one line on stderr saying how many it skipped, by extension
(``corpus: 'books': skipped 3 files of unknown format (2 .pdf, 1 with no extension)``); it is refused when no
file of a known format is left. The default corpus (the standard library's ``.py`` files) is plain text.

Documents are the unit of the train/validation split (`scaling.data`), so they are never sliced across
it. A very long document (one big book file) can be cut at line boundaries with ``doc_max_bytes``.
Everything here streams: at most one document (or one Parquet record batch) is held at a time.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import sys
import sysconfig
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zstandard

from scaling.errors import DataError

Kind = Literal["text", "jsonl", "parquet", "datasets"]

#: Folders of the interpreter's library that are not the standard library itself.
_NOT_STDLIB = frozenset({"site-packages", "dist-packages"})
#: Folder names skipped when a corpus entry is a folder (besides names starting with ".").
_SKIPPED_DIRS = frozenset({"__pycache__"})
_BINARY_SNIFF_BYTES = 8192
_PARQUET_BATCH_ROWS = 1024


def default_corpus_files() -> list[Path]:
    """The ``*.py`` files of the Python standard library, recursively, sorted by relative path.

    Read from ``sysconfig.get_paths()["stdlib"]``, leaving out ``site-packages`` / ``dist-packages``
    (third-party code) and ``__pycache__``. About 1,800 files and 31 MB of text for CPython 3.11.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _NOT_STDLIB and d not in _SKIPPED_DIRS]
        files.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    if not files:
        raise DataError(f"corpus: the default corpus (Python standard library at {root}) has no .py files")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def resolve_corpus(corpus: Sequence[str]) -> list[Path]:
    """Expand corpus entries (files, folders, globs) into a deduplicated list of files, in order.

    Entries keep the order given; a folder expands to its files (recursively, hidden files and
    ``__pycache__`` left out) sorted by relative path, a glob to its matches sorted. ``~`` is expanded.
    An empty ``corpus`` is the default corpus (`default_corpus_files`).

    Raises DataError naming the entry when a path does not exist or a pattern matches no file, naming
    the file when a file entry has an extension the reader does not know (`file_kind`), and naming the
    entry when a folder or glob holds no file of a known format (the others are skipped, `_known`).
    """
    if not corpus:
        return default_corpus_files()
    files: list[Path] = []
    seen: set[Path] = set()
    for entry in corpus:
        found = _expand_entry(entry)
        if not found:
            raise DataError(f"corpus: {entry!r} matches no file")
        if len(found) == 1 and found[0] == Path(os.path.expanduser(entry)):
            file_kind(found[0])  # a file named as such: a format the reader does not know is refused now
        else:
            found = _known(found, entry)
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files


def is_saved_dataset(path: Path) -> bool:
    """A folder written by HF `datasets`' `save_to_disk` (a Dataset or a DatasetDict)."""
    return path.is_dir() and ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()
                              or (path / "dataset_dict.json").is_file())


def _expand_entry(entry: str) -> list[Path]:
    path = Path(os.path.expanduser(entry))
    if path.is_file() or is_saved_dataset(path):
        return [path]
    if path.is_dir():
        return _folder_files(path)
    if glob.has_magic(str(path)):
        found: list[Path] = []
        for match in sorted(glob.glob(str(path), recursive=True)):
            p = Path(match)
            found.extend([p] if p.is_file() or is_saved_dataset(p) else _folder_files(p) if p.is_dir() else [])
        return found
    return []


def _folder_files(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS]
        files.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


#: Compression the reader decodes while streaming (one layer: ``x.jsonl.gz``, ``x.txt.zst``).
COMPRESSIONS = (".gz", ".zst")
#: JSON Lines (one document per line).
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
#: Plain text (one document per file).
TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".rst", ".adoc", ".org", ".tex", ".html", ".htm", ".xml",
                 ".py", ".pyi", ".c", ".h", ".cc", ".cpp", ".hpp", ".java", ".js", ".ts", ".go", ".rs", ".rb", ".sh")
#: The formats, as a user reads them in an error message.
FORMATS = (f"JSON Lines ({', '.join(JSONL_SUFFIXES)}; optionally .gz or .zst), Parquet (.parquet), "
           f"a saved HF datasets folder, plain text ({' '.join(TEXT_SUFFIXES)}; optionally .gz or .zst)")


def kind_from_name(name: str) -> Kind | None:
    """``jsonl``, ``parquet`` or ``text`` from a file name's extension (one compression layer allowed, not
    on Parquet); None for an extension the reader does not know."""
    name = name.lower()
    base = next((name.removesuffix(c) for c in COMPRESSIONS if name.endswith(c)), name)
    if base.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if base.endswith(".parquet"):
        return "parquet" if base == name else None
    if base.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def file_kind(path: Path) -> Kind:
    """How a corpus entry is read: ``datasets`` (a saved HF dataset folder), else from its name
    (`kind_from_name`); DataError naming the file and listing the formats for an unknown extension."""
    if path.is_dir():
        return "datasets"
    kind = kind_from_name(path.name)
    if kind is None:
        ext = _extension(path)
        raise DataError(f"corpus: {path}: unknown format {repr(ext) if ext else '(no extension)'}; "
                        f"the corpus reader reads {FORMATS}")
    return kind


def _extension(path: Path) -> str:
    """The extension as a user reads it (the last two suffixes): ``.json.bz2``, ``.bin``, or ``""``."""
    return "".join([x for x in path.suffixes if " " not in x][-2:])


def _known(paths: list[Path], entry: str) -> list[Path]:
    """The files of a folder or glob entry the reader knows (saved dataset folders included); one line on
    stderr (once per process) with the count of the others by extension; DataError if none is left."""
    kept = [p for p in paths if p.is_dir() or kind_from_name(p.name) is not None]
    skipped = Counter(p.suffix.lower() or "with no extension" for p in paths
                      if not (p.is_dir() or kind_from_name(p.name)))
    if skipped:
        n = sum(skipped.values())
        what = ", ".join(f"{count} {ext}" for ext, count in skipped.most_common())
        if not kept:
            raise DataError(f"corpus: {entry!r}: none of its {n} file{'s' * (n != 1)} has a known format ({what}); "
                            f"the corpus reader reads {FORMATS}")
        line = f"corpus: {entry!r}: skipped {n} file{'s' * (n != 1)} of unknown format ({what})"
        if line not in _REPORTED:
            _REPORTED.add(line)
            print(line, file=sys.stderr)
    return kept


_REPORTED: set[str] = set()


def file_digest(path: Path) -> str:
    """BLAKE2b digest of a file's bytes (streamed), the basis of the corpus fingerprint; for a saved
    dataset folder, of each of its files' relative path and digest, in order."""
    if path.is_dir():
        h = hashlib.blake2b()
        for f in _folder_files(path):
            h.update(f"{f.relative_to(path).as_posix()}:{file_digest(f)}\n".encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


def entry_size(path: Path) -> int:
    """Bytes on disk of a corpus entry (a file, or a saved dataset folder's files): a size hint."""
    return sum(f.stat().st_size for f in _folder_files(path)) if path.is_dir() else path.stat().st_size


@dataclass(frozen=True)
class Document:
    """One document: its text and where it came from (``path`` and, for JSONL/Parquet, the line/row)."""

    text: str
    source: str


def iter_documents(
    files: Sequence[Path],
    *,
    text_field: str = "text",
    doc_max_bytes: int | None = None,
) -> Iterator[Document]:
    """Stream the non-empty documents of `files`, in order.

    `doc_max_bytes` cuts any document longer than that many UTF-8 bytes into consecutive documents
    at line boundaries (a single longer line is cut between characters), so a corpus of one big
    text file can still be split by document. Raises DataError for malformed JSONL/Parquet input.
    """
    for path in files:
        for doc in _read_file(path, text_field, doc_max_bytes):
            if not doc.text:
                continue
            if doc_max_bytes is not None and len(doc.text.encode("utf-8")) > doc_max_bytes:
                yield from _cut(io.StringIO(doc.text, newline=""), doc_max_bytes, doc.source)
            else:
                yield doc


def _read_file(path: Path, text_field: str, doc_max_bytes: int | None) -> Iterator[Document]:
    kind = file_kind(path)
    try:
        if kind == "jsonl":
            yield from _read_jsonl(path, text_field)
        elif kind == "parquet":
            yield from _read_parquet(path, text_field)
        elif kind == "datasets":
            yield from _read_saved_dataset(path, text_field)
        elif doc_max_bytes is not None:  # stream the file: a huge text file is never held whole
            with _open_binary(path) as f:
                if b"\x00" not in f.peek(_BINARY_SNIFF_BYTES)[:_BINARY_SNIFF_BYTES]:
                    lines = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
                    yield from _cut(lines, doc_max_bytes, str(path))
        else:
            text = _read_text(path)
            if text is not None:
                yield Document(text, str(path))
    except OSError as exc:  # includes gzip.BadGzipFile and EOFError-free truncation reports
        raise DataError(f"corpus: {path}: cannot read: {exc.strerror or exc}") from None
    except (EOFError, ValueError, zstandard.ZstdError) as exc:  # a truncated gzip stream, a corrupt Zstandard frame
        raise DataError(f"corpus: {path}: cannot decompress: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed while read (gzip, Zstandard), as a buffered stream."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name.endswith(".zst"):
        raw = open(path, "rb")
        # read_across_frames: multi-frame files (pzstd, Dolma) are one stream; closefd closes `raw`
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 16)  # type: ignore[arg-type]
    return open(path, "rb")


def _read_text(path: Path) -> str | None:
    """The file as text, or None when it looks binary (NUL byte in its first 8 KiB)."""
    with _open_binary(path) as f:
        data = f.read()
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace")


def _read_jsonl(path: Path, text_field: str) -> Iterator[Document]:
    with _open_binary(path) as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                shown = raw[:60].decode("utf-8", errors="replace").rstrip("\n")
                raise DataError(f"corpus: {path}:{lineno}: not valid JSON: {shown!r}") from None
            if not isinstance(record, dict) or text_field not in record:
                keys = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
                raise DataError(f"corpus: {path}:{lineno}: no field {text_field!r} (has: {keys})")
            value = record[text_field]
            if value is None:
                continue
            if not isinstance(value, str):
                raise DataError(
                    f"corpus: {path}:{lineno}: field {text_field!r} is {type(value).__name__} "
                    f"{_short(value)}, not a string"
                )
            yield Document(value, f"{path}:{lineno}")


def _read_parquet(path: Path, text_field: str) -> Iterator[Document]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, pa.ArrowIOError) as exc:
        raise DataError(f"corpus: {path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    schema = pf.schema_arrow
    if text_field not in schema.names:
        raise DataError(f"corpus: {path}: no column {text_field!r} (has: {', '.join(schema.names)})")
    column_type = schema.field(text_field).type
    if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        raise DataError(f"corpus: {path}: column {text_field!r} is {column_type}, not a string column")
    row = 0
    for batch in pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=[text_field]):
        for value in batch.column(0).to_pylist():
            if value is not None:
                yield Document(value, f"{path}:row {row}")
            row += 1


def _read_saved_dataset(path: Path, text_field: str) -> Iterator[Document]:
    """Rows of a `save_to_disk` folder (every split of a DatasetDict, in the order saved), memory-mapped."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"corpus: {path}: a saved HF dataset needs the datasets package "
                        f'(pip install "scaling-orchestrator[datasets]")') from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"corpus: {path}: not a readable saved dataset: {str(exc).splitlines()[0]}") from None
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, ds in splits:
        where = f"{path}[{split}]" if split else str(path)
        feature = ds.features.get(text_field)
        if feature is None:
            raise DataError(f"corpus: {where}: no column {text_field!r} (has: {', '.join(ds.column_names)})")
        if getattr(feature, "dtype", None) not in ("string", "large_string"):
            raise DataError(f"corpus: {where}: column {text_field!r} is {feature}, not a string column")
        row = 0
        for batch in ds.select_columns([text_field]).iter(batch_size=_PARQUET_BATCH_ROWS):
            for value in batch[text_field]:
                if value is not None:
                    yield Document(value, f"{where}:row {row}")
                row += 1


def _cut(lines: Iterable[str], max_bytes: int, source: str) -> Iterator[Document]:
    """Consecutive documents of at most `max_bytes` UTF-8 bytes made of `lines`, cut between lines
    when possible (a single longer line is cut between characters). A text that fits is one document
    named `source`; pieces of a longer one are named ``source#0``, ``source#1``, ..."""
    piece: list[str] = []
    size = 0
    part = 0
    for line in lines:
        n = len(line.encode("utf-8"))
        if piece and size + n > max_bytes:
            yield Document("".join(piece), f"{source}#{part}")
            part += 1
            piece, size = [], 0
        while n > max_bytes:  # a single line longer than the limit: cut it between characters
            head = line.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
            yield Document(head, f"{source}#{part}")
            part += 1
            line = line[len(head) :]
            n = len(line.encode("utf-8"))
        piece.append(line)
        size += n
    if piece:
        yield Document("".join(piece), source if part == 0 else f"{source}#{part}")


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
