"""Errors from bad input tables or fit files."""


class InputError(ValueError):
    """Bad input, as one line naming the file, column and value.

    Example: ``runs.csv: column 'loss': row 12 is NaN``. The CLI prints it and exits with code 2.
    """
