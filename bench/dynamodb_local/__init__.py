"""Measurements of DynamoDB Local against moto (docs/dynamodb-local-notes.md cites their output)."""
