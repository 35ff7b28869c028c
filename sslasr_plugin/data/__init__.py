from .validate import DataError, validate_split  # noqa: F401
