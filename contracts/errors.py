"""`UserError`: the one base class of errors caused by input (a spec, a flag, a table, a fit JSON).

Each package raises its own subclass (`analysis.errors.InputError`, `scaling.errors.ScalingError`,
`sweeps.spec.SpecError`, ...); the command line catches this base alone and prints the message, one
line naming the file, field and value the user wrote, with exit code 2.
"""


class UserError(Exception):
    """Bad input the user can fix; the message is one line that names what they wrote."""
