-- Tokens scoped to territories, with an optional expiry and the time of their last use.
-- Recording a use must not make every instance check its tokens again, so the trigger of
-- 0002 now fires only for the columns that decide what a token may do.
ALTER TABLE tokens
    ADD COLUMN territories  text[] NOT NULL DEFAULT '{}',  -- territory ids; empty: everywhere
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz;

DROP TRIGGER tokens_notify ON tokens;
CREATE TRIGGER tokens_notify
    AFTER INSERT OR DELETE OR UPDATE OF name, role, secret_hash, revoked_at, territories, expires_at
    ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION faro_notify_tokens();
