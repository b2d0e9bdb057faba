"""The local twin of a stack: an embedded AWS endpoint (moto server or dynamodb-local) and a real PostgreSQL."""
