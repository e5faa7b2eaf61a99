"""``vtr config``: print a profile, or what one profile changes relative to another.

    vtr config show --profile full                 # every key of the full profile, as YAML
    vtr config show --set data.source=msrvt        # a wrong value: exit 2 and one line naming it
    vtr config diff full                           # what full changes relative to sample
    vtr config diff full --profile my.yaml         # ... relative to another base

Both load through :func:`vtr.config.load_profile`, so they also check a profile (and ``--set``
overrides) before a long run.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from vtr.config import differences, load_profile


def add_parser(commands: Any) -> None:
    """Add ``vtr config show`` and ``vtr config diff`` to the ``vtr`` command line."""
    from vtr.cli import _profile_options

    config = commands.add_parser(
        "config", help="print or compare profiles", description="Print or compare profiles."
    )
    actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        parents=[_profile_options()],
        help="every key of a profile, as YAML",
        description="Load and validate a profile (with --set overrides) and print every key as YAML.",
    )
    show.set_defaults(handler=_show)
    diff = actions.add_parser(
        "diff",
        parents=[_profile_options()],
        help="the keys one profile changes relative to another",
        description=(
            "Print `key: base -> other` for every key whose value differs between the base profile "
            "(--profile with --set, default sample) and OTHER."
        ),
    )
    diff.add_argument("other", metavar="OTHER", help="the profile compared with the base, e.g. full")
    diff.set_defaults(handler=_diff)


def _show(args: argparse.Namespace) -> int:
    from vtr.cli import _load

    print(yaml.safe_dump(_load(args, {}).to_dict(), sort_keys=False), end="")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from vtr.cli import _load

    print(format_differences(differences(_load(args, {}), load_profile(args.other))), end="")
    return 0


def format_differences(changed: dict[str, tuple[Any, Any]]) -> str:
    """``key: a -> b`` lines (values in YAML flow style), or a line saying there is no difference."""
    if not changed:
        return "no differences\n"

    def flow(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip().removesuffix("\n...")

    return "".join(f"{key}: {flow(a)} -> {flow(b)}\n" for key, (a, b) in changed.items())
