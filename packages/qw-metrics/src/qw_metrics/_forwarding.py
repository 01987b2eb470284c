"""Wrappers that take the wrapped function's own parameters.

A `def wrapper(*args, **kwargs): ... func(*args, **kwargs)` packs every call's arguments into a
tuple and a dict and unpacks them again: about 70 ns, a quarter of what `timed` costs per call.
The hot-path wrappers are therefore written as source templates and compiled once per decorated
function with its exact parameter list (names, kinds and the very same default objects), so a
call forwards its arguments as they are. Functions whose parameters cannot be reproduced that
way (builtins, callables with a `__signature__`) get the same template with `*args, **kwargs`.

A template defines `_qw_wrapper(__PARAMS__)` and calls `__AWAIT___qw_func(__ARGS__)`; every
other name it uses starts with `_qw_` or is one of `_BUILTINS`, names the wrapped function's
parameters may not take (a function whose parameters do gets the `*args, **kwargs` form). For an
`async def` function the same template makes an `async def` wrapper that awaits it.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import types
from collections.abc import Callable, Mapping
from typing import Any

_PREFIX = "_qw_"
_BUILTINS = frozenset({"Exception", "AttributeError", "None"})
_ANYTHING = "*_qw_args, **_qw_kwargs"
_GENERIC: tuple[str, str, dict[str, object]] = (_ANYTHING, _ANYTHING, {})


def compile_wrapper(
    template: str, func: Callable[..., Any], names: Mapping[str, object]
) -> Callable[..., Any]:
    """Compile `template` into a wrapper of `func` with `func`'s parameters; `names` are the
    globals the template uses besides `_qw_func`."""
    if inspect.iscoroutinefunction(func):
        # `*args, **kwargs`, so that bad arguments still raise when the coroutine is awaited.
        params, args, defaults = _GENERIC
        template = template.replace("def _qw_wrapper(", "async def _qw_wrapper(")
        template = template.replace("__AWAIT__", "await ")
    else:
        params, args, defaults = _forwarding(func) or _GENERIC
        template = template.replace("__AWAIT__", "")
    source = template.replace("__PARAMS__", params).replace("__ARGS__", args)
    label = getattr(func, "__qualname__", type(func).__name__)
    code = compile(source, f"<qw_metrics wrapper of {label}>", "exec")
    namespace: dict[str, Any] = {**names, **defaults, "_qw_func": func}
    exec(code, namespace)  # a template filled in with real parameter names only
    wrapper: Callable[..., Any] = namespace["_qw_wrapper"]
    return wrapper


def fill(template: str, **parts: str) -> str:
    """`template` with each line that is only `__NAME__` replaced by the lines of `parts["name"]`,
    indented as that line was: one frame of a template serves several bodies."""

    def part(match: re.Match[str]) -> str:
        return textwrap.indent(textwrap.dedent(parts[match[2].lower()]).strip("\n"), match[1])

    return re.sub(r"^( *)__([A-Z]+)__$", part, template, flags=re.MULTILINE)


def _forwarding(func: Callable[..., Any]) -> tuple[str, str, dict[str, object]] | None:
    """(parameter list, argument list, default values by placeholder name) reproducing `func`'s
    parameters, or None when they cannot be reproduced exactly."""
    if type(func) is not types.FunctionType or hasattr(func, "__signature__"):
        return None
    params: list[str] = []
    args: list[str] = []
    defaults: dict[str, object] = {}
    kind = inspect.Parameter
    previous = None
    for i, param in enumerate(inspect.signature(func, follow_wrapped=False).parameters.values()):
        name = param.name
        if name.startswith(_PREFIX) or name in _BUILTINS:
            return None
        if previous is kind.POSITIONAL_ONLY and param.kind is not kind.POSITIONAL_ONLY:
            params.append("/")
        if param.kind is kind.KEYWORD_ONLY and previous not in (
            kind.KEYWORD_ONLY,
            kind.VAR_POSITIONAL,
        ):
            params.append("*")
        previous = param.kind
        if param.kind is kind.VAR_POSITIONAL:
            params.append(f"*{name}")
            args.append(f"*{name}")
            continue
        if param.kind is kind.VAR_KEYWORD:
            params.append(f"**{name}")
            args.append(f"**{name}")
            continue
        if param.default is param.empty:
            params.append(name)
        else:
            placeholder = f"{_PREFIX}default_{i}"
            defaults[placeholder] = param.default
            params.append(f"{name}={placeholder}")
        args.append(f"{name}={name}" if param.kind is kind.KEYWORD_ONLY else name)
    if previous is kind.POSITIONAL_ONLY:
        params.append("/")
    return ", ".join(params), ", ".join(args), defaults
