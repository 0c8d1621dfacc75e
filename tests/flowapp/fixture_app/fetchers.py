"""Fixture data fetchers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calflow.flowapp import ActionContext, DataFetcher, Option


class Colors(DataFetcher):
    key = "colors"
    name = "Colors"

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        return [Option("red", "Red"), Option("blue", "Blue", data={"hex": "#00f"})]


class Sizes(DataFetcher):
    key = "sizes"
    name = "Sizes"
    depends_on = ("color",)

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        sizes = ["S", "M"] if context["color"] == "red" else ["L"]
        return [Option(s, f"{context['color']} {s}", str(ctx.value("region"))) for s in sizes]
