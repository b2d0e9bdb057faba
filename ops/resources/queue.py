"""``aws:sqs/queue:Queue``: the stream consumer's dead-letter queue (retention, encryption, tags)."""

from __future__ import annotations

from typing import Any

from ops.aws import call, error_code
from ops.errors import CloudError, NotFoundError
from ops.plan import PlannedResource
from ops.resources.base import Adapter, Context, Field, Live, as_json, as_str, tags_dict

# SQS's answers for a queue that is not there (the query and the JSON protocol spell it differently).
MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def _attribute(input_name: str, api: str, convert: Any = as_str, **options: Any) -> Field:
    return Field(input_name, f"Attributes.{api}", to_api=convert, normalize=convert, **options)


class QueueAdapter(Adapter):
    type = "aws:sqs/queue:Queue"
    label = "SQS queue"
    service = "sqs"
    fields = (
        Field("name", "QueueName", in_place=False),
        _attribute("messageRetentionSeconds", "MessageRetentionPeriod"),
        _attribute("visibilityTimeoutSeconds", "VisibilityTimeout"),
        _attribute("delaySeconds", "DelaySeconds"),
        _attribute("maxMessageSize", "MaximumMessageSize"),
        _attribute("receiveWaitTimeSeconds", "ReceiveMessageWaitTimeSeconds"),
        _attribute("sqsManagedSseEnabled", "SqsManagedSseEnabled"),
        _attribute("kmsMasterKeyId", "KmsMasterKeyId"),
        _attribute("kmsDataKeyReusePeriodSeconds", "KmsDataKeyReusePeriodSeconds"),
        _attribute("fifoQueue", "FifoQueue", in_place=False),
        _attribute("redrivePolicy", "RedrivePolicy", as_json),
        _attribute("policy", "Policy", as_json),
        Field("tags", "Tags", to_api=tags_dict, normalize=tags_dict),
    )

    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        sqs = ctx.client("sqs")
        url = ctx.known_id(planned)
        if url:
            found = self._read(url, ctx)
            if found is not None:
                return found
        name = self.physical_name(planned)
        try:
            url = call(sqs.get_queue_url, f"SQS GetQueueUrl {name}", QueueName=name)["QueueUrl"]
        except (NotFoundError, CloudError) as err:
            if isinstance(err, NotFoundError) or error_code(err) in MISSING_QUEUE_CODES:
                return None
            raise
        return self._read(str(url), ctx)

    def _read(self, url: str, ctx: Context) -> Live | None:
        sqs = ctx.client("sqs")
        try:
            attributes = call(
                sqs.get_queue_attributes, f"SQS GetQueueAttributes {url}", QueueUrl=url, AttributeNames=["All"]
            )["Attributes"]
            tags = call(sqs.list_queue_tags, f"SQS ListQueueTags {url}", QueueUrl=url).get("Tags") or {}
        except (NotFoundError, CloudError) as err:
            if isinstance(err, NotFoundError) or error_code(err) in MISSING_QUEUE_CODES:
                return None
            raise
        name = url.rstrip("/").rsplit("/", 1)[-1]
        view = {"QueueName": name, "Attributes": attributes, "Tags": tags_dict(tags)}
        return Live(name, {"id": url, "url": url, "arn": attributes.get("QueueArn", "")}, view)

    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        sqs = ctx.client("sqs")
        attributes = {
            f.api.split(".", 1)[1]: want[f.api]
            for f in self.fields
            if f.api.startswith("Attributes.") and f.api in want
        }
        request: dict[str, Any] = {"QueueName": want["QueueName"], "Attributes": attributes}
        if want.get("Tags"):
            request["tags"] = want["Tags"]
        url = call(sqs.create_queue, f"SQS CreateQueue {want['QueueName']}", **request)["QueueUrl"]
        live = self._read(str(url), ctx)
        assert live is not None
        return live

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        sqs = ctx.client("sqs")
        url = live.identity["url"]
        attributes = {path.split(".", 1)[1]: want[path] for path in changed if path.startswith("Attributes.")}
        if attributes:
            call(sqs.set_queue_attributes, f"SQS SetQueueAttributes {url}", QueueUrl=url, Attributes=attributes)
        if "Tags" in changed:
            declared, have = want.get("Tags", {}), live.view.get("Tags", {})
            stale = [k for k in have if k not in declared]
            if stale:
                call(sqs.untag_queue, f"SQS UntagQueue {url}", QueueUrl=url, TagKeys=stale)
            fresh = {k: v for k, v in declared.items() if have.get(k) != v}
            if fresh:
                call(sqs.tag_queue, f"SQS TagQueue {url}", QueueUrl=url, Tags=fresh)
