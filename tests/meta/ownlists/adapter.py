"""Wrong on a 13x13 input only, a size no case of the suite has: a deviation that only a generated
property would find, backed by the adapter's own fixed case and listed in its own known-deviation list."""

from backends.numpy import NumpyBackend


class _WrongAt13(NumpyBackend):
    def conv_general(self, X, K, **params):
        Y = super().conv_general(X, K, **params)
        return Y + 1 if X.shape[2:] == (13, 13) else Y


class ShipsItsDeviation(_WrongAt13):
    cases = "own_cases.json"
    known_deviations = "own_xfails.txt"


class ShipsTheCaseOnly(_WrongAt13):
    """The control: the case without the list; the deviation fails."""

    cases = "own_cases.json"


class ShipsAWrongCase(NumpyBackend):
    cases = "wrong_cases.json"


class ShipsAListForAnother(NumpyBackend):
    known_deviations = "for_another.txt"


class ShipsAMissingCase(NumpyBackend):
    cases = "no_such_cases.json"
