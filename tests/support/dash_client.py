"""Calls Dash callbacks over HTTP the way the browser does (for tests and benchmarks)."""

from __future__ import annotations

from typing import Any

import httpx


def callback_request(
    client: httpx.Client, output_id: str, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `/_dash-update-component` body for the callback whose outputs include `output_id`.

    Reads `/_dash-dependencies` like the renderer; `values` maps "id.prop" to the value sent
    for that input or state (None when absent). The first input is marked as changed.
    """
    values = values or {}
    dependencies = client.get("/_dash-dependencies").raise_for_status().json()
    for dep in dependencies:
        targets = _outputs(dep["output"])
        if any(t["id"] == output_id for t in targets):
            break
    else:
        raise LookupError(f"no callback outputs {output_id!r}")

    def fill(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [{**item, "value": values.get(f"{item['id']}.{item['property']}")} for item in items]

    inputs = fill(dep["inputs"])
    return {
        "output": dep["output"],
        "outputs": targets if len(targets) > 1 or dep["output"].startswith("..") else targets[0],
        "inputs": inputs,
        "state": fill(dep["state"]),
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }


def _outputs(spec: str) -> list[dict[str, str]]:
    # "..a.x...b.y.." for several outputs, "a.x" for one.
    parts = spec.strip(".").split("...") if spec.startswith("..") else [spec]
    targets = []
    for part in parts:
        component, prop = part.rsplit(".", 1)
        targets.append({"id": component, "property": prop})
    return targets


def call(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST one callback request; returns the response's `response` mapping (id -> props)."""
    reply = client.post("/_dash-update-component", json=body)
    reply.raise_for_status()
    result: dict[str, Any] = reply.json()["response"]
    return result
