"""Deltas: the commands that take the kernel from the last committed ruleset to a new one.

Computed from the two `NodeRuleset`s alone, never by listing the kernel. A pod that appears
or stops being isolated gets or loses its chain, sets and dispatch entries; a pod whose
addresses change is removed and added again; otherwise only set elements are added and
deleted. The result is applied as one transaction, like a full replace.
"""

from __future__ import annotations

from enforcer.render import (
    Command,
    element_command,
    pod_direction_add,
    pod_direction_delete,
    set_name,
)
from enforcer.ruleset import NodeRuleset, PodRules
from policy.addresses import Family
from policy.cluster import Direction


def delta(old: NodeRuleset, new: NodeRuleset) -> list[Command]:
    before, after = old.by_key(), new.by_key()
    cmds: list[Command] = []
    for key in sorted(before.keys() - after.keys()):
        cmds += _remove(before[key])
    for key in sorted(after.keys() - before.keys()):
        cmds += _add(after[key])
    for key in sorted(before.keys() & after.keys()):
        cmds += _change(before[key], after[key])
    return cmds


def _add(pod: PodRules) -> list[Command]:
    return [c for d in Direction for c in pod_direction_add(pod, d)]


def _remove(pod: PodRules) -> list[Command]:
    return [c for d in Direction for c in pod_direction_delete(pod, d)]


def _change(old: PodRules, new: PodRules) -> list[Command]:
    if old == new:
        return []
    if old.addresses != new.addresses:
        return _remove(old) + _add(new)
    cmds: list[Command] = []
    for direction in Direction:
        was, now = old.elements(direction), new.elements(direction)
        if was is None or now is None:
            if was is not None:
                cmds += pod_direction_delete(old, direction)
            if now is not None:
                cmds += pod_direction_add(new, direction)
            continue
        for family in Family:
            name = set_name(new, direction, family)
            gone = sorted(e for e in was - now if e.family is family)
            added = sorted(e for e in now - was if e.family is family)
            # Delete first: a new element may overlap one it replaces.
            if gone:
                cmds.append(element_command("delete", name, gone))
            if added:
                cmds.append(element_command("add", name, added))
    return cmds
