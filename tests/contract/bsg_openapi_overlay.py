"""BSG's published OpenAPI spec, with its known defects patched here and only here.

The spec is the provider's file (``shared/reference/bsg/openapi.yaml``, next to the
repository; ``BSG_OPENAPI_SPEC`` names another path). Each patch below names the
defect and why the patch does not loosen a check: it says what the spec's own
prose, examples or the provider's campaign article (seed 003) say instead.

1. ``SearchOperator`` / ``sl_clicks_comp`` enums (and an example using them) hold an
   unquoted ``=``, which YAML 1.1 (PyYAML) reads as the "value" tag and refuses:
   quoted to the string ``"="`` (text patch before parsing; the enum keeps every value).
2. Two ``link_url`` patterns are PHP (PCRE) regexes: ``/…/iu`` delimiters and
   ``\\p{L}`` (any letter), which Python's ``re`` (jsonschema) cannot compile.
   Rewritten with the same meaning: ``(?i)`` for ``/i``, letters as ``[^\\W\\d_]``,
   ``[\\p{L}\\d.-]`` as ``(?:[^\\W_]|[.-])``, ``[\\p{L}.]`` as ``(?:[^\\W\\d_]|\\.)``.
3. ``SmsSendGroupsRequest`` requires ``contacts``, a property it does not define; its
   properties, both examples and the seed say ``groups``: required ``groups`` instead.
4. ``SmsSendIndividualRequest.start_at`` is a copy of ``validity`` (integer 1-72);
   the seed, the other two send requests and the example of sms/send say a date
   (``"start_at": "2025-01-25 09:00:00"``): the schema of ``SmsSendRequest.start_at``.
5. ``format: date-time`` fields: the spec's own examples (``start_at: 2025-03-27
   19:44:06``, ``created_at: 2025-03-20 05:11:15``) and the seed ("format
   yyyy-mm-dd hh:mm:ss") use the space-separated form, which RFC 3339 does not
   allow. :data:`FORMAT_VALIDATORS` accepts RFC 3339 *and* exactly that form
   (a real calendar date and time); anything else still fails.
6. Fields whose schema is not ``nullable`` but which the spec's own answer examples
   show as ``null`` (``currency: null``, ``alternative_channels: null`` in the campaign
   answers, lines ~1139-1196; ``reference_id: null`` in the ``GET /api/messages``
   example): marked ``nullable`` (:data:`NULL_IN_EXAMPLES`); their types still hold.
7. ``CampaignPrice422Response.errors`` is typed an array, but the operation's own
   ``invalid_data`` example answers ``errors: {messages0phone: ["This value is too
   long. …"]}`` (field path -> messages), as every other 422 of the spec does; only its
   ``invalid_tariff`` example has ``errors: []``. Either form is accepted
   (:data:`PRICE_ERRORS`): the schema's array, or field paths mapping to lists of strings.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC_CANDIDATES = (
    Path(os.environ.get("BSG_OPENAPI_SPEC", "/nonexistent")),
    REPO.parent / "shared" / "reference" / "bsg" / "openapi.yaml",  # CI: shared/ beside the clone
    REPO.parent.parent / "shared" / "reference" / "bsg" / "openapi.yaml",
    Path("/work/shared/reference/bsg/openapi.yaml"),
)
SERVER = "https://one-api.bsg.world"

# 1. Unquoted '=' enum items (YAML "value" tag).
_BARE_EQUALS = re.compile(r"^(\s*(?:- |[A-Za-z_]+: ))=\s*$", re.M)
# 2. The two PHP link_url patterns, each rewritten with the same meaning.
_PHP_LINK_URL = r"/^(https?:\/\/)?([\p{L}\d\.-]+)\.([\p{L}\.]{2,50})([\/\w \.-]*)*\/?/iu"
_PY_LINK_URL = r"(?i)^(https?:\/\/)?((?:[^\W_]|[.-])+)\.((?:[^\W\d_]|\.){2,50})([\/\w \.-]*)*\/?"
# 6. (schema, property) that the spec's answer examples show as null.
NULL_IN_EXAMPLES = (
    ("CampaignSchema", "currency"),
    ("DetailCampaignSchema", "currency"), ("DetailCampaignSchema", "alternative_channels"),
    ("MessageApiSchema", "reference_id"),
)
# 7. The price call's 422 errors, in both forms its examples show.
PRICE_ERRORS = {
    "anyOf": [
        {"type": "array", "items": {}},  # the schema's own
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    ]
}
_WIRE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML, timestamps kept as the strings they are (a JSON document has no datetimes)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def spec_path() -> Path | None:
    return next((path for path in SPEC_CANDIDATES if path.is_file()), None)


def _patch_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: (_PY_LINK_URL if key == "pattern" and value == _PHP_LINK_URL else _patch_patterns(value))
                for key, value in node.items()}  # fmt: skip
    if isinstance(node, list):
        return [_patch_patterns(item) for item in node]
    return node


@functools.lru_cache(maxsize=1)
def patched_spec() -> dict[str, Any]:
    """The spec as a dict with the patches above applied (cached: it is 14,000 lines)."""
    path = spec_path()
    if path is None:
        raise FileNotFoundError("BSG's openapi.yaml not found: " + ", ".join(map(str, SPEC_CANDIDATES)))
    text, count = _BARE_EQUALS.subn(r'\1"="', path.read_text(encoding="utf-8"))
    assert count >= 2, f"patch 1 expected the bare '=' enum items, found {count}: the spec changed"
    spec = _patch_patterns(yaml.load(text, Loader=_Loader))  # _Loader is a safe loader
    schemas = spec["components"]["schemas"]
    groups = schemas["SmsSendGroupsRequest"]
    assert "contacts" in groups["required"] and "contacts" not in groups["properties"], "patch 3: spec changed"
    groups["required"] = ["groups" if name == "contacts" else name for name in groups["required"]]
    individual = schemas["SmsSendIndividualRequest"]["properties"]
    assert individual["start_at"]["type"] == "integer", "patch 4: spec changed"
    individual["start_at"] = copy.deepcopy(schemas["SmsSendRequest"]["properties"]["start_at"])
    price_errors = schemas["CampaignPrice422Response"]["properties"]
    assert price_errors["errors"]["type"] == "array", "patch 7: spec changed"
    price_errors["errors"] = copy.deepcopy(PRICE_ERRORS)
    for schema, prop in NULL_IN_EXAMPLES:
        field = schemas[schema]["properties"].get(prop)
        if field is None:  # not every schema has both
            continue
        if "$ref" in field:  # OpenAPI 3.0 ignores siblings of $ref: the referenced schema, copied
            field = copy.deepcopy(schemas[field["$ref"].rsplit("/", 1)[-1]])
            while len(field.get("allOf", ())) == 1 and "$ref" in field["allOf"][0]:  # a branch would refuse null
                inner = copy.deepcopy(schemas[field.pop("allOf")[0]["$ref"].rsplit("/", 1)[-1]])
                field = {**inner, **field}
            schemas[schema]["properties"][prop] = field
        field["nullable"] = True
    return spec


def _date_time(value: Any) -> bool:
    if not isinstance(value, str):
        return True  # formats apply to strings only
    if _WIRE_TIME.fullmatch(value):
        try:
            dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return False
        return True
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value and (value.endswith("Z") or re.search(r"[+-]\d{2}:\d{2}$", value) is not None)


# 5. The date-time format as the provider writes it (see the module docstring).
FORMAT_VALIDATORS = {"date-time": _date_time}
