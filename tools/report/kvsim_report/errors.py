"""The report's two kinds of failure; cli.main prints either as one line."""


class InputError(Exception):
    """Bad input: printed as one line, exit status 2."""


class OutputError(Exception):
    """Outputs cannot be written: printed as one line, exit status 1."""
