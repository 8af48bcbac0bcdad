-- A bulk write (`faro import`) notifies once, at its commit, instead of once a row: it sets
-- `faro.bulk` to 'on' for its transaction (SET LOCAL), the row trigger is skipped by its WHEN
-- condition (no function call, no notification queued per row), and the import sends
-- {"resync": true} on faro_changes, which makes every instance reload. Any other write,
-- including plain SQL, notifies per row as before.
DROP TRIGGER records_notify ON records;
CREATE TRIGGER records_notify
    AFTER INSERT OR UPDATE OR DELETE ON records
    FOR EACH ROW
    WHEN (current_setting('faro.bulk', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION faro_notify_change();
