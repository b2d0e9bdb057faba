"""The local twin of a stack: an embedded AWS endpoint (moto server, MiniStack for DynamoDB) and a real PostgreSQL."""
