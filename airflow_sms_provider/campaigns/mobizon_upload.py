"""How the Mobizon operators upload an audience: portions of 500, or files above a threshold.

*Portions* (campaign/addRecipients with ``recipients``) answer with a result and a
message id per recipient. They are sequential, because Mobizon locks a campaign
during each call; the hook prepares the next portions while one is on the wire.

*Files*: when ``file_upload_threshold`` is set and the audience has more rows, the
normalised rows are spooled to temporary CSV files (a new file before
``max_file_bytes``) and each file is uploaded as ``recipientsFile``: one request and
one background task per file instead of one request per 500 rows. The trade-off:
Mobizon reports no per-recipient results for a file, so the summary's ``added``
is the growth of the campaign's message list (``totalItemCount``) from before the
first file to after the last task completed, and there are no message ids or per-number
rejection reasons (the package's own validation still reports invalid rows).

Either way memory stays flat: rows are read, normalised and sent (or spooled to
disk) as they stream, and only counts and a few examples are kept.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Any

from airflow_sms_provider.campaigns.ledger import Digest, SequenceDigest
from airflow_sms_provider.campaigns.reconcile import mobizon_numbers
from airflow_sms_provider.exceptions import (
    SmsCampaignFailedError,
    SmsFatalError,
    SmsProviderError,
    SmsValidationError,
)
from airflow_sms_provider.hooks.mobizon import AddResult, MobizonHook
from airflow_sms_provider.progress import Checkpoint, ProgressLog
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.recipients import (
    CsvSpool,
    DuplicateReport,
    RejectReport,
    check_filled_length,
    chunked,
    fill_problem,
    iter_recipient_batches,
    no_value_reason,
    placeholders,
    regroup,
    require_nonempty,
)
from airflow_sms_provider.validation import check_choice

PLACEHOLDERS_FLAGS = (1, 2, 3)
CHECKPOINT_INTERVAL = 5.0  # seconds between durable progress saves during a portion upload
PROGRESS_INTERVAL = 10.0  # seconds between progress lines (or every tenth of a known total)


def wait_for_task(hook: MobizonHook, task_id: int, timeout: float, log: Any) -> dict[str, Any]:
    """Poll a background task in-process, once per second at most; a line every 10 % or 10 s."""
    started = time.monotonic()
    deadline = started + timeout
    logged = (-100, started)  # (progress, time) of the last line
    while True:
        data = hook.get_task_status(task_id)
        outcome, message = proto.task_outcome(data)
        if outcome == proto.SUCCEEDED:
            log.info("Mobizon task %s: %s in %.0fs", task_id, message, time.monotonic() - started)
            return data
        if outcome == proto.FAILED:
            raise SmsCampaignFailedError(message, provider=proto.PROVIDER, details=data)
        now, progress = time.monotonic(), int(data.get("progress") or 0)
        if progress - logged[0] >= 10 or now - logged[1] >= PROGRESS_INTERVAL:
            log.info("Mobizon task %s: %s", task_id, message)
            logged = (progress, now)
        if now > deadline:
            raise SmsProviderError(f"mobizon task {task_id} still not complete after {timeout:.0f}s")
        time.sleep(proto.TASKQUEUE_MIN_POLL_INTERVAL)


def log_rejected(log: Any, invalid: dict[str, Any], shown: int = 10) -> None:
    """One line for the rows dropped before upload: how many, which rows, where the full report went.

    Row numbers only: the values (phone numbers) stay in the report file and XCom examples.
    """
    count = invalid["rejected"]
    if not count:
        return
    rows = [str(e["row"]) for e in invalid["examples"][:shown]]
    more = ", ..." if count > len(rows) else ""
    where = (f"every one written to {invalid['report_path']}" if invalid.get("report_path")
             else "no reject_report_path set: only the first examples are in the XCom summary")
    log.warning("%d row(s) rejected before upload (rows %s%s); %s", count, ", ".join(rows), more, where)


def _count(value: Any, field: str) -> int | None:
    """A count that may arrive templated ("5000"); None when unset; 0 allowed."""
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise SmsValidationError(f"{field}={value!r} is not a whole number", field=field, value=value) from None
    if number < 0:
        raise SmsValidationError(f"{field}={value!r} must be 0 or more", field=field, value=value)
    return number


filled_text_problem = proto.filled_text_problem  # the rule lives with Mobizon's other limits


class RecipientsMixin:
    """Turns the recipient parameters into a stream and uploads it (portions or files)."""

    recipients: Any
    number_field: str
    on_invalid: str
    reject_report_path: Any
    placeholders_flag: int | None
    max_reported: int
    file_upload_threshold: int | str | None
    max_file_bytes: int | str
    expected_count: int | str | None
    task_timeout: float
    _lease: Any = None  # the running try's lease (campaigns/lease.py), renewed as the upload progresses

    def _check_recipient_options(self) -> None:
        check_choice(self.on_invalid, ("fail", "skip"), "on_invalid")
        check_choice(self.placeholders_flag, PLACEHOLDERS_FLAGS, "placeholders_flag")
        _count(self.file_upload_threshold, "file_upload_threshold")
        _count(self.expected_count, "expected_count")
        if (_count(self.max_file_bytes, "max_file_bytes") or 0) < 1024:
            raise SmsValidationError(
                f"max_file_bytes={self.max_file_bytes!r} is too small for a recipients file",
                field="max_file_bytes", value=self.max_file_bytes,
            )  # fmt: skip

    def _stream(
        self, report: RejectReport, text: str | None, duplicates: DuplicateReport | None = None
    ) -> Iterator[Any]:
        """Normalised recipients as the Mobizon ``recipients`` items, lazily; a number once (first row wins)."""
        return itertools.chain.from_iterable(self._portions(report, text, duplicates))

    def _portions(
        self, report: RejectReport, text: str | None, duplicates: DuplicateReport | None = None
    ) -> Iterator[list[Any]]:
        """:meth:`_stream`'s items in lists of 500 (the last may be shorter): Mobizon's portions.

        Runs of clean numbers are checked a batch at a time (:func:`iter_recipient_batches`);
        the same errors, at the same rows, as row by row.
        """
        pieces = iter_recipient_batches(
            self.recipients, size=proto.MAX_RECIPIENTS_PER_CALL, number_field=self.number_field,
            on_invalid=self.on_invalid, report=report,
            duplicates=duplicates if duplicates is not None else DuplicateReport(cap=0),
        )  # fmt: skip
        # Non-empty after the per-row fill rule too: an audience whose every row is skipped stops here.
        return regroup(require_nonempty(self._items(pieces, report, text), report), proto.MAX_RECIPIENTS_PER_CALL)

    def _items(self, pieces: Iterable[Any], report: RejectReport, text: str | None) -> Iterator[list[Any]]:
        """Mobizon's ``recipients`` items; a row whose values cannot fill ``text`` follows ``on_invalid``.

        The rule is the estimate's (:func:`fill_problem`): values for a text without placeholders,
        a placeholder without a value (unless
        ``placeholders_flag`` 1 or 2 keeps or removes it), an empty filled text, a filled text
        past Mobizon's limit. ``fail`` names the row before anything is sent (a re-readable
        audience is read ahead by :meth:`_prevalidate`); ``skip`` leaves the row out and reports it.
        """
        needed = placeholders(text) if text else set()
        missing_allowed = self.placeholders_flag in (1, 2)
        skip = self.on_invalid == "skip"
        for piece in pieces:
            if type(piece) is tuple:  # a run of clean rows: numbers without params
                first_row, numbers = piece
                if needed and not missing_allowed:
                    if not skip:
                        raise _no_value(first_row, needed)
                    reason = no_value_reason(needed)
                    for offset, number in enumerate(numbers):
                        report.add(first_row + offset, number, reason)
                    continue
                yield [{"recipient": number} for number in numbers] if needed else numbers
                continue
            recipient = piece
            if recipient.params or needed:
                # Values for a known text without placeholders are refused too (they would be dropped
                # unsaid); text None: rows added to an existing campaign whose text is not read here.
                template = text or ""
                problem = None if text is None else fill_problem(
                    template, recipient.params, filled_text_problem, missing_allowed=missing_allowed,
                    remove_missing=self.placeholders_flag == 2)  # fmt: skip
                if problem is not None:
                    if not skip:
                        _refuse(template, recipient, needed, problem)
                    report.add(recipient.row, recipient.raw, problem)
                    continue
                yield [{"recipient": recipient.number, **recipient.params}]
            else:
                yield [recipient.number]

    def _prevalidate(self, text: str | None) -> bool:
        """Read a re-readable audience once before anything is created, so bad rows fail first.

        Lists, paths and storage objects are read twice (a CSV of a million rows costs a few
        seconds more). A one-shot iterator cannot be read twice without holding it: it is
        validated as it streams, after campaign/create but before send. Returns whether the
        pre-pass ran.
        """
        source = self.recipients
        if isinstance(source, Iterator):
            return False
        for _ in self._portions(RejectReport(cap=0), text):
            pass
        return True

    def _read_content(self, text: str | None, prefix_at: int = 0) -> tuple[Digest, SequenceDigest] | None:
        """The pre-pass (see :meth:`_prevalidate`) that also says what the audience holds.

        Returns the order-independent :class:`Digest` of the whole audience and the
        :class:`SequenceDigest` record of its first ``prefix_at`` numbers in this read's order
        (how a resume checks that "the first N" are the N an earlier try uploaded);
        None for a one-shot iterator, which is not read ahead.
        """
        if isinstance(self.recipients, Iterator):
            return None
        total, prefix, portion = Digest(), SequenceDigest(), []
        for item in self._stream(RejectReport(cap=0), text):
            number = item if isinstance(item, str) else item["recipient"]
            total.add(number)
            if total.count <= prefix_at:
                portion.append(number)
                if len(portion) == proto.MAX_RECIPIENTS_PER_CALL or total.count == prefix_at:
                    prefix.update(portion)
                    portion = []
        return total, prefix

    def _known_total(self) -> int | None:
        """The audience size for progress lines: ``expected_count``, or ``len()`` of a list."""
        expected = _count(self.expected_count, "expected_count")
        if expected is not None:
            return expected
        if isinstance(self.recipients, Sized) and not isinstance(self.recipients, (str, bytes)):
            return len(self.recipients)
        return None

    def _upload(
        self,
        hook: MobizonHook,
        campaign_id: int,
        text: str | None,
        ckpt: Checkpoint,
        log: Any,
        *,
        template: bool = False,
        prefix: SequenceDigest | None = None,
        reconcile: bool = False,
        owned: bool = True,
        held: set[int] | None = None,
    ) -> dict[str, Any]:
        """Upload the audience to ``campaign_id``; the summary for XCom (counts, capped examples).

        ``prefix``: the :class:`SequenceDigest` record of this read's first ``uploaded`` numbers
        (from :meth:`_read_content`), so a resume skips them only when they are the numbers
        an earlier try uploaded. ``reconcile``: the campaign was found again without a
        durable record: ask Mobizon what it holds. ``owned``: the campaign is this task's alone,
        so numbers in it that the audience lacks mean the audience changed (an error); a
        campaign filled by several tasks may hold others.
        """
        report = RejectReport(cap=self.max_reported, path=self.reject_report_path or None)
        duplicates = DuplicateReport(cap=self.max_reported)
        threshold = _count(self.file_upload_threshold, "file_upload_threshold")
        try:
            if threshold is None:
                summary = self._upload_portions(hook, campaign_id, self._portions(report, text, duplicates), ckpt,
                                                log, self._known_total(), prefix, reconcile, owned, held)
            else:
                stream = self._stream(report, text, duplicates)
                summary = self._upload_spooled(hook, campaign_id, stream, ckpt, log, text, template, threshold)
        finally:
            report.close()
        summary["invalid"] = report.summary()
        log_rejected(log, summary["invalid"])
        # Rows dropped by the audience rule (a number repeated within this audience); "duplicates"
        # stays Mobizon's own count of numbers it already had (e.g. a portion an earlier try sent).
        summary["audience_duplicates"] = duplicates.summary()
        duplicates.log_line(log)
        return summary

    # ------------------------------------------------------------ portions

    def _upload_portions(
        self, hook: MobizonHook, campaign_id: int, portions: Iterable[list[Any]], ckpt: Checkpoint, log: Any,
        total: int | None, prefix: SequenceDigest | None = None, reconcile: bool = False, owned: bool = True,
        held: set[int] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Upload ``portions`` (lists of 500 items, the last may be shorter), resuming by content.

        An earlier try's progress is ``uploaded`` (a count) with ``uploaded_sequence`` (the
        :class:`SequenceDigest` of those numbers in the order they were read). A resume skips the
        first ``uploaded`` numbers only when this read's first ``uploaded`` are the same
        sequence; otherwise (a set, a query without ORDER BY, a one-shot iterator that cannot
        be read ahead) it asks Mobizon which numbers the campaign holds and uploads the others,
        and stops before sending if the campaign holds numbers the audience does not.
        """
        done = int(ckpt.get("uploaded", 0))
        recorded = ckpt.get("uploaded_sequence")
        size = proto.MAX_RECIPIENTS_PER_CALL
        sequence: SequenceDigest | None = SequenceDigest()
        if held is not None:
            pass  # read back by the caller: uploaded by content below
        elif done and recorded is None and not ckpt.get("uploaded_by_content") and not reconcile:
            # A record written before content tracking: resume by position, as it was written.
            log.info("Resuming upload after %d recipients already sent to campaign %s", done, campaign_id)
            portions, sequence = regroup(portions, size, done), None
        elif done and prefix is not None and prefix.count == done and prefix.matches(recorded) and not reconcile:
            log.info("Resuming upload after %d recipients already sent to campaign %s (the same numbers, in "
                     "the same order, as this read's first %d)", done, campaign_id, done)  # fmt: skip
            portions, sequence = regroup(portions, size, done), prefix
        elif done or reconcile:
            held = mobizon_numbers(hook, campaign_id)
        if held is not None:
            log.info("Resuming upload to campaign %s by content: it holds %d numbers (an earlier try recorded %d "
                     "uploaded); uploading only the audience's other numbers", campaign_id, len(held), done)
            done, sequence = len(held), None
            ckpt.save(uploaded=done, uploaded_by_content=True, uploaded_sequence=None)
        held_count = len(held) if held is not None else 0
        progress = ProgressLog(log, total=total, interval=PROGRESS_INTERVAL, start=done)
        saved = {"at": time.monotonic(), "sent": 0}
        # The sequence record at every portion boundary, by absolute count (written by the reader thread).
        marks: dict[int, dict[str, Any]] = {sequence.count: sequence.dump()} if sequence is not None else {}

        def tracked(items: Iterable[list[Any]]) -> Iterator[list[Any]]:
            # Runs in the hook's reader thread: the sequence of every portion boundary, so a save
            # after ``sent`` rows records exactly those rows. One hash update per portion.
            assert sequence is not None
            for portion in items:
                sequence.update(portion if set(map(type, portion)) == {str} else
                                [item if isinstance(item, str) else item["recipient"] for item in portion])
                marks[sequence.count] = sequence.dump()
                yield portion

        def missing(items: Iterable[list[Any]]) -> Iterator[list[Any]]:
            assert held is not None
            for portion in items:
                kept = []
                for item in portion:
                    number = int(item if isinstance(item, str) else item["recipient"])
                    if number in held:
                        held.discard(number)  # a second copy in the audience goes up: Mobizon skips it (code 4)
                        continue
                    kept.append(item)
                yield kept

        if sequence is not None:
            portions = tracked(portions)
        elif held is not None:
            portions = regroup(missing(portions), size)

        def checkpoint(sent: int) -> None:
            if sequence is None:
                ckpt.save(uploaded=done + sent)
            elif done + sent in marks:
                ckpt.save(uploaded=done + sent, uploaded_sequence=marks[done + sent])
                for key in [k for k in list(marks) if k < done + sent]:
                    marks.pop(key, None)

        def on_portion(sent: int, result: AddResult) -> None:
            # A durable save is a round trip to Airflow: every few seconds, not per portion. A crash
            # in between re-sends at most those portions, which Mobizon answers as duplicates.
            now = time.monotonic()
            if now - saved["at"] >= CHECKPOINT_INTERVAL:
                checkpoint(sent)
                saved.update(at=now, sent=sent)
                if self._lease is not None:  # a long upload keeps this try's lease alive
                    self._lease.renew()
            progress.update(done + sent, f"{result.added:,} added, {result.rejected:,} rejected")

        def on_exit(sent: int) -> None:
            if sent != saved["sent"]:
                checkpoint(sent)

        result = AddResult()
        try:
            result = hook.add_recipient_portions(
                campaign_id, portions, placeholders_flag=self.placeholders_flag,
                keep_rejections=self.max_reported, on_portion=on_portion,
            )  # fmt: skip
        finally:
            # Also after a failure: the portions confirmed so far need not be sent again.
            on_exit(progress.done - done)
        if held and owned:
            raise SmsFatalError(
                f"Mobizon campaign {campaign_id} (not sent) holds {len(held):,} of {held_count:,} number(s) that are "
                f"not in this try's audience (e.g. {', '.join(str(n) for n in itertools.islice(held, 3))}): the "
                "audience changed between tries. Not sending it; check the campaign (delete it to start again), "
                "then clear this task",
                provider=proto.PROVIDER,
            )
        progress.finish(f"{result.added:,} added, {result.rejected:,} rejected, {result.duplicates:,} duplicates")
        # "added" counts this try's; what earlier tries put in the campaign is said too, or a resumed upload
        # would read as a campaign of its last few portions.
        return {"upload": "portions", **result.summary(), "already_uploaded": done}

    # ------------------------------------------------------------ files

    def _upload_spooled(
        self, hook: MobizonHook, campaign_id: int, stream: Iterable[Any], ckpt: Checkpoint, log: Any,
        text: str | None, template: bool, threshold: int,
    ) -> dict[str, Any]:  # fmt: skip
        """Spool the whole audience to disk (counting it), then upload by portions or by files."""
        columns = sorted(placeholders(text)) if template and text else []
        max_bytes = _count(self.max_file_bytes, "max_file_bytes")
        with CsvSpool(["recipient", *columns] if template else None, max_bytes=max_bytes) as spool:
            progress = ProgressLog(log, "recipients read", total=self._known_total(), interval=PROGRESS_INTERVAL)
            # The sequence digest at the end of every file: a resume skips finished files only if
            # this read put the same numbers, in the same order, into them.
            sequence, numbers = SequenceDigest(), []  # type: SequenceDigest, list[str]
            marks: list[dict[str, Any]] = []
            for item in stream:
                cells = _file_cells(item, columns, self.placeholders_flag)
                parts = len(spool.parts)
                spool.write(cells)
                if parts and len(spool.parts) != parts:  # this row began a new file
                    sequence.update(numbers)
                    marks.append(sequence.dump())
                    numbers = []
                numbers.append(cells[0])
                if spool.rows % 5000 == 0:
                    progress.update(spool.rows)
            spool.finish()
            sequence.update(numbers)
            marks.append(sequence.dump())
            if spool.rows <= threshold:
                log.info("%d recipients (threshold %d): uploading in portions", spool.rows, threshold)
                items = (_portion_item(cells, columns) for cells in spool.read())
                return self._upload_portions(hook, campaign_id, chunked(items, proto.MAX_RECIPIENTS_PER_CALL), ckpt,
                                             log, spool.rows)
            log.info(
                "%d recipients over file_upload_threshold=%d: uploading %d file(s) as recipientsFile "
                "(no per-recipient message ids)", spool.rows, threshold, len(spool.parts),
            )  # fmt: skip
            return self._upload_files(hook, campaign_id, spool, ckpt, log, template, marks)

    def _upload_files(
        self, hook: MobizonHook, campaign_id: int, spool: CsvSpool, ckpt: Checkpoint, log: Any, template: bool,
        marks: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        before = ckpt.get("file_msgs_before")
        if before is None:
            before = _message_count(hook, campaign_id)
            ckpt.save(file_msgs_before=before)
        task_ids: list[int] = list(ckpt.get("file_task_ids") or [])
        parts_done = int(ckpt.get("file_parts_done", 0))
        recorded = ckpt.get("uploaded_sequence")
        if parts_done and recorded is not None and marks is not None and (
                parts_done > len(marks) or marks[parts_done - 1] != recorded):  # fmt: skip
            # Another order: which numbers the finished files held is unknown here. Let the
            # earlier imports finish, then upload every file (Mobizon skips numbers present).
            log.warning("This read's first %d file(s) are not the ones an earlier try uploaded (the audience came "
                        "back in another order): uploading every file again; Mobizon skips numbers already in "
                        "campaign %s", parts_done, campaign_id)  # fmt: skip
            for task_id in task_ids[parts_done:]:
                wait_for_task(hook, task_id, self.task_timeout, log)
            parts_done, task_ids = 0, []
            ckpt.save(file_parts_done=0, file_task_ids=[], uploaded=0, uploaded_sequence=None)
        for index, path in enumerate(spool.parts):
            if index < parts_done:
                continue  # uploaded and completed by an earlier try
            if len(task_ids) > index:
                log.info("Waiting for task %s of file %d from an earlier try", task_ids[index], index + 1)
            else:
                answer = hook.add_recipients(
                    campaign_id, file=path, placeholders_flag=self.placeholders_flag, file_encoding="UTF-8",
                    file_skip_header=template, file_delimiter=",", file_enclosure='"',
                )  # fmt: skip
                if answer.task_id is None:
                    raise SmsProviderError(f"mobizon: a recipients file upload answered code {answer.code}, not 100")
                task_ids.append(answer.task_id)
                ckpt.save(file_task_ids=task_ids)
                log.info("File %d of %d (%d rows) uploaded: Mobizon task %s",
                         index + 1, len(spool.parts), spool.part_rows[index], answer.task_id)
            wait_for_task(hook, task_ids[index], self.task_timeout, log)
            ckpt.save(file_parts_done=index + 1, uploaded=sum(spool.part_rows[: index + 1]),
                      uploaded_sequence=marks[index] if marks is not None else None)
        after = _message_count(hook, campaign_id)
        added = None if after is None or before is None else after - before
        return {
            "upload": "file",
            "files": len(spool.parts),
            "background_task_ids": task_ids,
            "uploaded": spool.rows,
            "added": added,
            # What Mobizon did not add (bad numbers, stop list, duplicates): without reasons for a file.
            "rejected": None if added is None else spool.rows - added,
            "duplicates": None,
            "message_ids": [],
            "rejections": [],
        }


def _refuse(text: str, recipient: Any, needed: set[str], problem: str) -> None:
    """Raise the ``on_invalid="fail"`` error for a row :func:`fill_problem` refused, naming the row."""
    missing = needed - set(recipient.params)
    if missing and problem.startswith("no value"):  # not with placeholders_flag 1/2: there the text was refused
        raise _no_value(recipient.row, missing)
    try:  # too long: the error names the longest value (its field) and its length
        check_filled_length(text, recipient.params, recipient.row, filled_text_problem)
    except SmsValidationError as err:
        raise SmsValidationError(f"recipients {err}", field=err.field, value=err.value) from None
    raise SmsValidationError(f"recipients row {recipient.row}: {problem}", field="recipients", value=recipient.row)


def _no_value(row: int, missing: set[str]) -> SmsValidationError:
    return SmsValidationError(
        f"recipients row {row}: placeholder(s) {', '.join('{' + m + '}' for m in sorted(missing))} have no value "
        "(set placeholders_flag=1 to keep them or 2 to remove them)",
        field="recipients",
        value=row,
    )


def _file_cells(item: Any, columns: list[str], flag: int | None) -> list[str]:
    """One spooled row: the number, then a cell per placeholder column (template campaigns)."""
    if isinstance(item, str):
        return [item, *(_missing(name, flag) for name in columns)]
    number = item["recipient"]
    return [number, *(str(item[name]) if name in item else _missing(name, flag) for name in columns)]


def _missing(name: str, flag: int | None) -> str:
    # A file has a cell for every column, so "no value" must be written out: flag 1 keeps
    # the placeholder in the text (its literal), flag 2 removes it (empty). Flag 3 and the
    # default never get here: the stream refuses rows with missing values first.
    return "{" + name + "}" if flag == 1 else ""


def _portion_item(cells: list[str], columns: list[str]) -> Any:
    if not columns:
        return cells[0]
    return {"recipient": cells[0], **dict(zip(columns, cells[1:], strict=True))}


def _message_count(hook: MobizonHook, campaign_id: int) -> int | None:
    """The messages the campaign holds now: message/list's ``totalItemCount`` (None when absent).

    Not ``counters.totalMsgNum``: the documents say it is "updated during the processing
    (before sending)" and that "counter updates may occur with a delay", so right after an
    import it can still miss what the import added. The message list counts the messages.
    """
    page = hook.list_messages({"campaignIds": [campaign_id]}, page_size=proto.PAGE_SIZES[0])
    total = page.get("totalItemCount")
    return None if total is None else int(total)


__all__ = ["CHECKPOINT_INTERVAL", "PLACEHOLDERS_FLAGS", "RecipientsMixin", "wait_for_task"]
