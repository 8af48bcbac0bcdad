-- A token created, revoked or deleted notifies every instance (LISTEN faro_changes), so that
-- tokens verified and cached by an instance are checked again at once: a revoke takes effect
-- on the next request everywhere.
CREATE FUNCTION faro_notify_tokens() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('faro_changes', '{"tokens": true}');
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_notify
    AFTER INSERT OR UPDATE OR DELETE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION faro_notify_tokens();
