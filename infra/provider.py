"""The AWS provider every resource of a stack goes through."""

from __future__ import annotations

import pulumi_aws as aws

from ops.stacks import StackSettings


def stack_tags(settings: StackSettings) -> dict[str, str]:
    """The tags that identify who owns a resource: the project and the stack."""
    return {"project": settings.project, "stack": settings.name}


def create_provider(settings: StackSettings) -> aws.Provider:
    """One explicit provider per stack, so region and default tags come from the stack file."""
    # Default tags reach every taggable resource, including ones a future module forgets to tag.
    return aws.Provider(
        "aws",
        region=settings.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=stack_tags(settings)),
    )
