"""Narrow patches to the twin's moto server, one module each (``isolation``: one DynamoDB request at a time)."""
