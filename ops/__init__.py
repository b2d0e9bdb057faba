"""The library behind every task: AWS and PostgreSQL logic that returns data and never prints.

Functions take an injected boto3 client or psycopg connection; nothing here creates a
client at import time, and nothing here imports the Pulumi SDK (the data tasks stay fast).
"""
