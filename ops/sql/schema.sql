-- The application's PostgreSQL schema (the seeds' users and activities tables).
-- Idempotent: db.schema-load can run on a database that already has it.
-- gen_random_uuid() is built in since PostgreSQL 13: no extension needed.

CREATE TABLE IF NOT EXISTS public.users (
  uuid            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  display_name    TEXT NOT NULL,
  handle          TEXT NOT NULL UNIQUE,
  email           TEXT NOT NULL UNIQUE,
  cognito_user_id TEXT UNIQUE,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.activities (
  uuid                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_uuid              UUID NOT NULL REFERENCES public.users (uuid) ON DELETE CASCADE,
  message                TEXT NOT NULL,
  replies_count          INTEGER NOT NULL DEFAULT 0,
  reposts_count          INTEGER NOT NULL DEFAULT 0,
  likes_count            INTEGER NOT NULL DEFAULT 0,
  reply_to_activity_uuid UUID REFERENCES public.activities (uuid) ON DELETE SET NULL,
  expires_at             TIMESTAMPTZ,
  created_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
