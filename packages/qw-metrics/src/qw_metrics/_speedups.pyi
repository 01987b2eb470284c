from collections.abc import Callable, Sequence
from typing import Any

class Counts:
    def __init__(self, bounds: Sequence[float]) -> None: ...
    def observe(self, amount: float, /) -> None: ...
    def snapshot(self) -> tuple[list[float], float]: ...

class ObservedCall:
    def __init__(
        self,
        func: Callable[..., Any],
        counts: Counts,
        *,
        value: Callable[[Any], float | None] | None = None,
        on_error: Callable[[BaseException], object] | None = None,
        age: bool = False,
    ) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, obj: object, owner: type | None = None) -> Any: ...
