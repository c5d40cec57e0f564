"""Errors from bad input tables or fit files."""

from contracts.errors import UserError


class InputError(UserError, ValueError):
    """Bad input, as one line naming the file, column and value.

    Example: ``runs.csv: column 'loss': row 12 is NaN``. The CLI prints it and exits with code 2.
    """
