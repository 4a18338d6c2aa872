"""Stand-in for ``carb`` logging (tests only): messages are kept in ``messages``."""

messages: list[tuple[str, str]] = []


def log_info(msg: str) -> None:
    messages.append(("info", msg))


def log_warn(msg: str) -> None:
    messages.append(("warn", msg))


def log_error(msg: str) -> None:
    messages.append(("error", msg))
