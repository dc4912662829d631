"""The one exception numsim raises for bad input."""


class NumsimError(ValueError):
    """Bad input: the message names the argument, what was expected and what came."""


def bad(arg, expected, got):
    """Build the standard error for argument `arg`."""
    return NumsimError(f"{arg}: expected {expected}, got {got}")


class NumsimWarning(UserWarning):
    """A suspicious result (inf/NaN outputs, saturations, overflow events), computed as asked."""
