"""Monitors as code: read a YAML file into validated specs, or write specs back as YAML.

    monitors:
      - name: Homepage
        kind: http
        url: https://example.com
        conditions: ["[STATUS] == 200"]
    maintenance:
      - name: Nightly deploy
        cron: "0 3 * * *"
        duration: 30m
        timezone: Europe/Warsaw
        monitors: [Homepage]

Strings may use ``${NAME}`` to take a value from the environment (keep secrets out of
the file). Every error names the file, the line and the field; nothing is applied then.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from dozor.config.specs import (
    MaintenanceSpec,
    MonitorSpec,
    Path,
    Problem,
    SpecError,
    maintenance_to_mapping,
    parse_maintenance,
    parse_monitor,
    spec_to_mapping,
)

SECTIONS = ("monitors", "maintenance")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigFileError(Exception):
    """The file is not valid; the message lists every problem with its line."""


@dataclass
class Document:
    monitors: list[MonitorSpec] = field(default_factory=list)
    maintenance: list[MaintenanceSpec] = field(default_factory=list)


def load_file(path: FilePath) -> Document:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot read: {error.strerror}") from None
    return load_text(text, str(path))


def load_text(text: str, name: str = "<text>") -> Document:
    """Parse and validate a whole document; raise ConfigFileError naming every problem."""
    reader = _Reader(name)
    data = reader.read(text)
    problems: list[Problem] = list(reader.problems)
    document = Document()
    if not isinstance(data, dict):
        if data is not None:
            problems.append(Problem((), "the file must be a mapping with a monitors: list"))
        data = {}
    for key in data:
        if key not in SECTIONS:
            problems.append(Problem((key,), f"unknown section (expected one of {SECTIONS})"))
    _read_monitors(data.get("monitors") or [], document, problems)
    _read_maintenance(data.get("maintenance") or [], document, problems)
    if problems:
        raise ConfigFileError("\n".join(reader.describe(p) for p in problems))
    return document


def _read_monitors(items: object, document: Document, problems: list[Problem]) -> None:
    if not isinstance(items, list):
        problems.append(Problem(("monitors",), "must be a list of monitors"))
        return
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            spec = parse_monitor(item)
        except SpecError as error:
            problems.extend(Problem(("monitors", index, *p.path), p.message)
                            for p in error.problems)
            continue
        if spec.name in seen:
            problems.append(Problem(("monitors", index, "name"),
                                    f"a monitor named {spec.name!r} is already in this file"))
        seen.add(spec.name)
        document.monitors.append(spec)


def _read_maintenance(items: object, document: Document, problems: list[Problem]) -> None:
    if not isinstance(items, list):
        problems.append(Problem(("maintenance",), "must be a list of windows"))
        return
    names = {spec.name for spec in document.monitors}
    for index, item in enumerate(items):
        try:
            window = parse_maintenance(item)
        except SpecError as error:
            problems.extend(Problem(("maintenance", index, *p.path), p.message)
                            for p in error.problems)
            continue
        for name in window.monitors:
            if name not in names:
                problems.append(Problem(("maintenance", index, "monitors"),
                                        f"no monitor named {name!r} in this file"))
        document.maintenance.append(window)


class _Reader:
    """Builds plain data from YAML while remembering the line of every path."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def read(self, text: str) -> Any:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{self.name}:{mark.line + 1}" if mark else self.name
            raise ConfigFileError(f"{where}: not valid YAML: "
                                  f"{getattr(error, 'problem', None) or error}") from None
        finally:
            loader.dispose()
        if node is None:
            return None
        try:
            return self._walk(node, ())
        except yaml.YAMLError as error:  # e.g. a tag safe YAML does not construct
            mark = getattr(error, "problem_mark", None)
            where = f"{self.name}:{mark.line + 1}" if mark else self.name
            raise ConfigFileError(f"{where}: {getattr(error, 'problem', None) or error}"
                                  ) from None

    def _walk(self, node: yaml.Node, path: Path) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self._walk(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._constructor.construct_object(node, deep=True)
        return self._expand(value, path) if isinstance(value, str) else value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        own = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        self._constructor.flatten_mapping(node)  # `<<: *defaults` merge keys come first
        merged = len(node.value) - own
        result: dict[Any, Any] = {}
        own_keys: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self._constructor.construct_object(key_node, deep=True)
            if index >= merged:  # written here, not merged in: these must be unique
                if key in own_keys:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    self.problems.append(Problem((*path, key), "duplicate key"))
                own_keys.add(key)
            result[key] = self._walk(value_node, (*path, key))
            self.lines[(*path, key)] = key_node.start_mark.line + 1
        return result

    def _expand(self, value: str, path: Path) -> str:
        if "\x00" in value:  # YAML's "\0" escape; no database column can keep it
            self.problems.append(Problem(path, "must not contain the NUL character (U+0000)"))
            return value.replace("\x00", "")
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                self.problems.append(Problem(path, f"environment variable {name} is not set"))
                return ""
            return os.environ[name]
        return _VARIABLE.sub(replace, value)

    def describe(self, problem: Problem) -> str:
        path = problem.path
        while path and path not in self.lines:
            path = path[:-1]
        line = self.lines.get(path)
        where = f"{self.name}:{line}" if line else self.name
        return f"{where}: {_dotted(problem.path)}: {problem.message}" if problem.path \
            else f"{where}: {problem.message}"


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def dump(monitors: list[MonitorSpec], maintenance: list[MaintenanceSpec]) -> str:
    """The YAML text that load_text reads back as the same monitors and windows."""
    document: dict[str, Any] = {"monitors": [spec_to_mapping(m) for m in monitors]}
    if maintenance:
        document["maintenance"] = [maintenance_to_mapping(w) for w in maintenance]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
