"""``aws:lambda/eventSourceMapping:EventSourceMapping``: how the table's stream feeds the consumer.

In the cloud it is read with ``ListEventSourceMappings``. A twin has no Lambda: its stream
worker plays the mapping (``ops.local.stream_worker``), started by ``local.up`` with the plan's
settings, which ``local.up`` records; on a twin those recorded settings are what is compared,
and only the ones the worker plays.
"""

from __future__ import annotations

from typing import Any

from ops.aws import items
from ops.plan import PlannedResource
from ops.resources.base import Adapter, Context, Field, Live, as_json, as_sorted, nest
from ops.stream_mapping import WORKER_MODULE

# What the twin's stream worker does as the mapping does (the rest is Lambda's alone).
WORKER_FIELDS = (
    "FunctionArn",
    "BatchSize",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "FilterCriteria.Filters",
    "DestinationConfig.OnFailure.Destination",
)
RUNNING_STATES = ("Creating", "Enabling", "Enabled", "Updating")


def function_name_of(value: Any) -> Any:
    """``arn:aws:lambda:…:function:<name>[:qualifier]`` → ``<name>``; a bare name stays as it is."""
    if isinstance(value, str) and ":function:" in value:
        return value.split(":function:", 1)[1].split(":", 1)[0]
    return value


def filter_patterns(value: Any) -> Any:
    """Filters (the program's ``{"pattern"}`` or the API's ``{"Pattern"}``) as sorted canonical JSON."""
    if not isinstance(value, list):
        return value
    return sorted(as_json(f.get("pattern", f.get("Pattern")) if isinstance(f, dict) else f) for f in value)


class MappingAdapter(Adapter):
    type = "aws:lambda/eventSourceMapping:EventSourceMapping"
    label = "event source mapping"
    service = "lambda"
    order = 3  # after the table (its stream) and the queue (its destination)
    on_twin = False  # no Lambda on a twin: the stream worker plays it
    fields = (
        Field("eventSourceArn", "EventSourceArn", in_place=False),
        Field("functionName", "FunctionArn", to_api=function_name_of, normalize=function_name_of),
        Field("startingPosition", "StartingPosition", in_place=False),
        Field("enabled", "Enabled"),
        Field("batchSize", "BatchSize"),
        Field("maximumBatchingWindowInSeconds", "MaximumBatchingWindowInSeconds"),
        Field("parallelizationFactor", "ParallelizationFactor"),
        Field("bisectBatchOnFunctionError", "BisectBatchOnFunctionError"),
        Field("maximumRetryAttempts", "MaximumRetryAttempts"),
        Field("maximumRecordAgeInSeconds", "MaximumRecordAgeInSeconds"),
        Field("tumblingWindowInSeconds", "TumblingWindowInSeconds"),
        Field("functionResponseTypes", "FunctionResponseTypes", normalize=as_sorted),
        Field("filterCriteria.filters", "FilterCriteria.Filters", to_api=filter_patterns, normalize=filter_patterns),
        Field("destinationConfig.onFailure.destinationArn", "DestinationConfig.OnFailure.Destination"),
    )

    def physical_name(self, planned: PlannedResource) -> str:
        return f"{function_name_of(planned.inputs.get('functionName'))} ← stream"

    def worker_settings(self, planned: PlannedResource, ctx: Context) -> dict[str, Any]:
        """What the twin's stream worker is started with: the plan's values of the fields it plays."""
        want = self.expected(planned, ctx)
        return {path: want[path] for path in WORKER_FIELDS if path in want}

    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        if ctx.twin:
            return self._worker(ctx)
        client = ctx.client("lambda")
        want = self.expected(planned, ctx)
        function = want.get("FunctionArn")
        source = want.get("EventSourceArn")
        request = (
            {"EventSourceArn": source} if source and not str(source).startswith("<") else {"FunctionName": function}
        )
        for mapping in items(
            client, "list_event_source_mappings", "Lambda ListEventSourceMappings", "EventSourceMappings", **request
        ):
            if function_name_of(mapping.get("FunctionArn")) == function:
                view = {**mapping, "Enabled": mapping.get("State") in RUNNING_STATES}
                identity = {
                    "id": mapping["UUID"],
                    "uuid": mapping["UUID"],
                    "arn": mapping.get("EventSourceMappingArn", ""),
                }
                return Live(f"{function} ← {mapping.get('EventSourceArn')} ({mapping['UUID']})", identity, view)
        return None

    @staticmethod
    def _worker(ctx: Context) -> Live | None:
        from ops.proc import running
        from ops.target import read_twin

        worker = (read_twin(ctx.target.stack.name) or {}).get("stream_worker") or {}
        if not running(worker.get("pid"), WORKER_MODULE):
            return None
        settings = worker.get("mapping") or {}
        return Live(
            f"the twin's stream worker (pid {worker['pid']})", {"id": f"stream-worker-{worker['pid']}"}, nest(settings)
        )

    def compare(self, planned: PlannedResource, live: Live, ctx: Context, only: tuple[str, ...] | None = None) -> Any:
        if not ctx.twin:
            return super().compare(planned, live, ctx, only)
        result = super().compare(planned, live, ctx, only=WORKER_FIELDS)
        declared = self.expected(planned, ctx)
        result.not_compared.extend(
            f"{f.input} (Lambda's, not the worker's)"
            for f in self.fields
            if f.api in declared and f.api not in WORKER_FIELDS
        )
        return result
