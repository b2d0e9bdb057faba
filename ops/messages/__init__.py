"""The messaging model, one role per module; an application backend could import it as is.

- ``model``: the items (message, group row, pair entry, group key), their keys and their mapping
- ``bodies``: a message's body as stored (plain or sealed) and moving it between items unopened
- ``paging``: one page of a partition newest first, and the cursor to the next
- ``read``: access patterns 1 and 2 (a user's groups; a group's messages)
- ``send``: access pattern 3, creating a pair's group or appending to it
- ``membership``: named groups of 2 to 50 members: creating one, adding and removing members
- ``fanout``: moving every member's group row of a group to its newest message
- ``consumer``: the stream consumer (typed record, per-record handler, batch processor, Lambda entry)

This package plus what it imports (``ops.errors``, ``ops.aws``: the standard library and
botocore only) is exactly what the stream consumer's Lambda ships; ``ops.lambda_package``
derives that file list from the imports. Sealing and opening bodies (``ops.crypto``, which needs
``cryptography``) stay outside it: the read and write functions take a cipher as an argument.
"""
