"""Audience data is data: which template fields Jinja may render, and how far.

Airflow renders every string a template field holds, however deeply it is nested in
lists, dicts, tuples, sets or objects with ``template_fields``. For fields that carry
data from outside the DAG file (customer rows, numbers, ids), that would execute the
data: a customer named ``{{ conn.mobizon_default.password }}`` would receive the API key.

The rule, for the fields named in :data:`DATA_FIELDS`:

* a top-level ``str`` (a file path, a URL, ``"{{ ti.xcom_pull('export') }}"``) or
  ``ObjectStoragePath`` is a template, rendered as Airflow always does (including
  ``render_template_as_native_obj``); what it renders to is not rendered again;
* an ``XComArg`` (``task.output``, ``task.output["rows"]``, ``.map()``...) is resolved and
  its value used as it is;
* a callable is left to Airflow (3.1+ calls it with the context; its result is not rendered);
* anything else — a list, dict, tuple, set, generator, row object — reaches the provider
  byte for byte: nothing nested in it is rendered.

Other template fields (text, sender, settings, ``provider_options``) are written by the DAG
author and keep Airflow's usual rendering. A class changes the set with ``data_fields``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import ObjectStoragePath

try:  # what Airflow's templater resolves instead of rendering (XComArg, LiteralValue...)
    from airflow.sdk.definitions._internal.mixins import ResolveMixin as _Resolvable
except ImportError:  # pragma: no cover - a layout without it: XComArg is the one that matters
    from airflow.providers.common.compat.sdk import XComArg as _Resolvable  # type: ignore[assignment,unused-ignore]

# Fields holding audience data or ids that may come from outside the DAG file.
DATA_FIELDS: frozenset[str] = frozenset({
    "recipients",  # numbers or rows with placeholder values (every audience operator, the notifier)
    "recipient",  # Mobizon's single SMS: one number
    "contacts",  # Mobizon contact card ids
    "groups",  # Mobizon contact groups, BSG contact lists
    "campaign_ids",  # BSG stop / statistics
    "message_ids",  # Mobizon delivery statuses
})  # fmt: skip


def renders_whole(value: Any) -> bool:
    """Whether Airflow may render (or resolve, or call) ``value`` of a data field as a whole.

    True for what is a template or a reference by itself; False for containers and every
    other object, whose contents are data.
    """
    return isinstance(value, (str, ObjectStoragePath, _Resolvable)) or (callable(value) and not isinstance(value, type))


class DataFieldsMixin:
    """Renders the ``data_fields`` among ``template_fields`` by the rule above; put it before the Airflow base.

    Works through ``_do_render_template_fields``, which ``render_template_fields`` of
    operators, mapped operators (on the unmapped task) and notifiers all call, on
    Airflow 3.0 to 3.3.
    """

    data_fields: ClassVar[frozenset[str]] = DATA_FIELDS

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Any,
        jinja_env: Any,
        seen_oids: set[int],
    ) -> None:
        fields = list(template_fields)
        if parent is self:  # objects nested in other fields keep their own rules
            fields = [name for name in fields if not self._is_data(name)]
        super()._do_render_template_fields(parent, fields, context, jinja_env, seen_oids)  # type: ignore[misc]

    def _is_data(self, name: str) -> bool:
        """A data field whose value must not go through Airflow's recursive rendering."""
        return name in self.data_fields and hasattr(self, name) and not renders_whole(getattr(self, name))


__all__ = ["DATA_FIELDS", "DataFieldsMixin", "renders_whole"]
