"""Read configs from TOML/YAML files or dicts, apply ``--set`` overrides, expand sweeps.

A list given where the schema expects a single value is a sweep: the run covers
the Cartesian grid of all swept values, one scenario per grid point.
"""

from __future__ import annotations

import copy
import itertools
import tomllib
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
import yaml
from pydantic import BaseModel, ValidationError

from stresslab.config.schema import Config
from stresslab.errors import ConfigError


@dataclass(frozen=True)
class ScenarioSet:
    """Validated scenarios of one run: the sweep grid flattened along ``scenario``.

    Attributes:
        scenarios: one validated :class:`Config` per grid point.
        axes: swept field path -> the values swept, in grid order.
        coords: swept field path -> value per scenario (length ``len(scenarios)``).
        resolved: the resolved config as a plain dict, sweeps written as lists.
        name: the config file's stem (``crypto_long_squeeze``), or None for a config given as a dict.
    """

    scenarios: tuple[Config, ...]
    axes: dict[str, list[Any]]
    coords: dict[str, list[Any]]
    resolved: dict[str, Any]
    name: str | None = None

    def to_toml(self) -> str:
        return tomli_w.dumps(self.resolved)


def load_config(source: str | Path | Mapping[str, Any] | ScenarioSet | Config,
                overrides: Iterable[str] = ()) -> ScenarioSet:
    """Load, override, validate and expand a config.

    Args:
        source: a path to a ``.toml``/``.yaml``/``.yml`` file, a plain dict with the
            same schema, or an already loaded config.
        overrides: ``"a.b=value"`` strings; values are read as TOML values
            (``0.5``, ``true``, ``"sqrt"``, ``[1, 2]``), bare words as strings.

    Raises:
        ConfigError: with a one-line message naming the field and what is allowed.
    """
    if isinstance(source, ScenarioSet) and not overrides:
        return source
    name = source.name if isinstance(source, ScenarioSet) else Path(source).stem if isinstance(
        source, str | Path) else None
    if isinstance(source, ScenarioSet):
        source = source.resolved
    if isinstance(source, Config):
        source = _dump(source)
    raw = _read(source) if isinstance(source, str | Path) else copy.deepcopy(dict(source))
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a table of sections (simulation, market, ...)")
    for item in overrides:
        _apply_override(raw, item)
    sweeps: list[tuple[tuple[Any, ...], list[Any]]] = []
    _find_sweeps(Config, raw, (), sweeps)
    for path, values in sweeps:
        if path[0] == "simulation":
            raise ConfigError(f"{_dotted(path)}: cannot be swept (it sets the time grid or run size); give one value")
        if not values:
            raise ConfigError(f"{_dotted(path)}: an empty list; give a value or a non-empty list to sweep")
    axes = {_dotted(p): list(v) for p, v in sweeps}
    scenarios, coords = [], {name: [] for name in axes}
    for combo in itertools.product(*(v for _, v in sweeps)) if sweeps else [()]:
        point = copy.deepcopy(raw)
        for (path, _), value in zip(sweeps, combo, strict=True):
            _set(point, path, value)
        scenario = validate(point)
        dumped = _dump(scenario)
        for path, _ in sweeps:
            coords[_dotted(path)].append(_get(dumped, path))
        scenarios.append(scenario)
    resolved = _dump(scenarios[0])
    for (path, values) in sweeps:
        _set(resolved, path, list(values))
    return ScenarioSet(tuple(scenarios), axes, coords, resolved, name)


def validate(raw: Mapping[str, Any]) -> Config:
    """Validate one scenario dict into a frozen :class:`Config`."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_errors(err)) from None


def format_errors(err: ValidationError) -> str:
    """One line: ``field.path: problem (got value)`` for each distinct problem."""
    by_path: dict[str, list[str]] = {}
    for e in err.errors(include_url=False):
        path = _dotted(_clean_loc(e["loc"]))
        if e["type"] == "extra_forbidden":
            msg = f"unknown key{_allowed_keys(e['loc'])}"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] not in ("value_error", "missing") and not isinstance(e.get("input"), dict | list):
                msg += f" (got {e.get('input')!r})"
        by_path.setdefault(path or "config", [])
        if msg not in by_path[path or "config"]:
            by_path[path or "config"].append(msg)
    return "; ".join(_field_message(p, m) for p, m in by_path.items())


def _field_message(path: str, messages: list[str]) -> str:
    """``path: message``; a message that names its own field (a check across fields) is kept as it is."""
    text = " or ".join(messages)
    if path == "config" or text.startswith((f"{path}.", f"{path}:", f"{path} ")):
        return text
    return f"{path}: {text}"


def _read(path: str | Path) -> Any:
    path = Path(path)
    if path.is_dir():
        if path.suffix == ".zarr" or (path / ".zmetadata").exists() or (path / "zarr.json").exists():
            raise ConfigError(f"{path}: is a result store, not a config file; stresslab report reads it")
        raise ConfigError(f"{path}: is a directory, not a config file")
    if path.suffix == ".nc" and path.is_file():
        raise ConfigError(f"{path}: is a result file, not a config file; stresslab report reads it")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config is a TOML or YAML text file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    if not text.strip():
        raise ConfigError(f"{path}: the config file is empty")
    try:
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if path.suffix == ".toml":
            return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0]
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {first}") from None
    raise ConfigError(f"{path}: unknown config format {path.suffix!r}; allowed: .toml, .yaml, .yml")


def _apply_override(raw: dict, item: str) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: write key=value, e.g. --set market.sigma=0.8")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    try:
        _set(raw, path, value)
    except (IndexError, TypeError):
        raise ConfigError(f"--set {key}: no such field to override") from None


def _set(tree: Any, path: Sequence[Any], value: Any) -> None:
    for part in path[:-1]:
        if isinstance(tree, dict):
            tree = tree.setdefault(part, {})
        else:
            tree = tree[part]
    tree[path[-1]] = value


def _get(tree: Any, path: Sequence[Any]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _find_sweeps(model: type[BaseModel], raw: Any, prefix: tuple, out: list) -> None:
    """Collect (path, values) for lists given where the schema wants one value."""
    if not isinstance(raw, dict):
        return
    for key, value in raw.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        element, is_sequence = _element_model(field.annotation, value)
        path = (*prefix, key)
        if is_sequence:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    sub = _pick_model(element, item)
                    if sub is not None:
                        _find_sweeps(sub, item, (*path, i), out)
        elif element is not None:
            _find_sweeps(element, value, path, out)
        elif isinstance(value, list):
            out.append((path, value))


def _element_model(annotation: Any, value: Any) -> tuple[Any, bool]:
    """(model or union of models inside the annotation, whether it is a sequence)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return typing.get_args(annotation)[0], True
    if origin is typing.Annotated:
        return _element_model(typing.get_args(annotation)[0], value)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _pick_model(annotation: Any, item: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for candidate in typing.get_args(annotation):
        tag = candidate.model_fields.get("type")
        if tag is not None and isinstance(item, dict) and item.get("type") in typing.get_args(tag.annotation):
            return candidate
    return None


def _clean_loc(loc: Sequence[Any]) -> tuple[Any, ...]:
    """The config path of an error location: fields and list indices, without pydantic's union labels."""
    out: list[Any] = []
    node: Any = Config
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            out.append(part)
            field = node.model_fields.get(part) if isinstance(part, str) else None
            node = _annotation_node(field.annotation) if field is not None else None
        elif isinstance(node, tuple) and node[0] == "sequence" and isinstance(part, int):
            out.append(part)
            node = _annotation_node(node[1])
        elif isinstance(node, tuple) and node[0] == "union":
            node = next((m for m in node[1] if part in typing.get_args(m.model_fields["type"].annotation)), None)
        # anything else is a label pydantic adds for a member of a union of plain types: not part of the path
    return tuple(out)


def _annotation_node(annotation: Any) -> Any:
    """A model class, ("sequence", element), ("union", models) or None for a plain value."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _annotation_node(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is tuple:
        return ("sequence", typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    members = [m for m in typing.get_args(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if members and all("type" in m.model_fields for m in members):
        return ("union", members)
    return members[0] if len(members) == 1 else None


def _allowed_keys(loc: Sequence[Any]) -> str:
    """'; allowed keys: ...' for the table an unknown key was found in."""
    node: Any = Config
    for part in _clean_loc(loc)[:-1]:
        if isinstance(node, type) and issubclass(node, BaseModel):
            node = _annotation_node(node.model_fields[part].annotation)
        elif isinstance(node, tuple) and node[0] == "sequence":
            node = _annotation_node(node[1])
        if isinstance(node, tuple) and node[0] == "union":
            tag = loc[list(loc).index(part) + 1] if part in loc and list(loc).index(part) + 1 < len(loc) else None
            node = next((m for m in node[1] if tag in typing.get_args(m.model_fields["type"].annotation)), None)
    if not (isinstance(node, type) and issubclass(node, BaseModel)):
        return ""
    return f"; allowed keys: {', '.join(node.model_fields)}"


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path)


def _dump(config: Config) -> dict[str, Any]:
    return _drop_none(config.model_dump(mode="json"))


def _drop_none(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _drop_none(v) for k, v in tree.items() if v is not None}
    if isinstance(tree, list):
        return [_drop_none(v) for v in tree]
    return tree
