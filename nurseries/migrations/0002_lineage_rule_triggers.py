"""Database triggers for the rules that span rows.

The services check every rule first and explain it in the user's terms; these
triggers are the backstop for writes that bypass them (COPY, raw SQL, a second
process racing the first). Each raises SQLSTATE 23514 (check_violation), which
psycopg reports as an IntegrityError, with a message naming the lot, dispatch or
grafting, so the services can pass the text on unchanged.

- conservation: units passed on to child lots plus units dispatched never exceed
  what the lot held. The lot row is locked (FOR UPDATE) before summing, so two
  concurrent draws on one lot are serialised rather than both seeing room.
- acyclic lineage: a new edge parent → child is refused when the child is already
  among the parent's ancestors (WITH RECURSIVE walk upwards). Lineage writes take
  one transaction-level advisory lock, so two edges that would close a cycle
  together cannot both pass; edge writes are rare and cheap, so this costs nothing.
- dates forward: a child lot is not produced before its parents; nothing is
  dispatched before the lot was produced; budwood is not grafted before it was cut.
- grafting: the plot has a boundary in force on the grafting date
  (plots_plotboundary valid_from/valid_to); a sub-polygon lies within it
  (ST_CoveredBy, exact), and then sets grafted_ha (geodesic, 4 decimals); the plot's
  grafted hectares together never exceed the area of that boundary (or the declared
  area of a plot surveyed as a point). Half a unit of the 4th decimal is allowed,
  the rounding of grafted_ha itself.
"""

from django.db import migrations

LOCK_LINEAGE = "PERFORM pg_advisory_xact_lock(hashtext('nurseries_lineage'));"

FORWARD = r"""
CREATE OR REPLACE FUNCTION nurseries_check_outflow(lot_pk bigint) RETURNS void AS $$
DECLARE
    held integer;
    lot_code text;
    drawn bigint;
    sent bigint;
BEGIN
    SELECT quantity, code INTO held, lot_code FROM nurseries_materiallot WHERE id = lot_pk FOR UPDATE;
    SELECT COALESCE(sum(quantity), 0) INTO drawn FROM nurseries_lotparent WHERE parent_id = lot_pk;
    SELECT COALESCE(sum(quantity), 0) INTO sent FROM nurseries_dispatch WHERE lot_id = lot_pk;
    IF drawn + sent > held THEN
        RAISE EXCEPTION 'lot % holds % units, but % would leave it (% passed on to other lots, % dispatched)',
            lot_code, held, drawn + sent, drawn, sent
            USING ERRCODE = 'check_violation', CONSTRAINT = 'materiallot_conservation';
    END IF;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION nurseries_lotparent_rules() RETURNS trigger AS $$
DECLARE
    parent_code text;
    child_code text;
    parent_day date;
    child_day date;
BEGIN
    """ + LOCK_LINEAGE + r"""
    SELECT code, produced_on INTO parent_code, parent_day FROM nurseries_materiallot WHERE id = NEW.parent_id;
    SELECT code, produced_on INTO child_code, child_day FROM nurseries_materiallot WHERE id = NEW.child_id;
    IF EXISTS (
        WITH RECURSIVE up(id) AS (
            SELECT NEW.parent_id
            UNION
            SELECT e.parent_id FROM nurseries_lotparent e JOIN up ON e.child_id = up.id
        )
        SELECT 1 FROM up WHERE id = NEW.child_id
    ) THEN
        RAISE EXCEPTION 'lot % cannot be made from lot %: % already descends from %, so the lineage would loop',
            child_code, parent_code, parent_code, child_code
            USING ERRCODE = 'check_violation', CONSTRAINT = 'lotparent_acyclic';
    END IF;
    IF child_day < parent_day THEN
        RAISE EXCEPTION 'lot % (produced %) cannot come from lot % (produced later, %)',
            child_code, child_day, parent_code, parent_day
            USING ERRCODE = 'check_violation', CONSTRAINT = 'lotparent_dates_forward';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER nurseries_lotparent_rules BEFORE INSERT OR UPDATE ON nurseries_lotparent
    FOR EACH ROW EXECUTE FUNCTION nurseries_lotparent_rules();

CREATE OR REPLACE FUNCTION nurseries_lotparent_outflow() RETURNS trigger AS $$
BEGIN
    PERFORM nurseries_check_outflow(NEW.parent_id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER nurseries_lotparent_outflow AFTER INSERT OR UPDATE ON nurseries_lotparent
    FOR EACH ROW EXECUTE FUNCTION nurseries_lotparent_outflow();

CREATE OR REPLACE FUNCTION nurseries_dispatch_rules() RETURNS trigger AS $$
DECLARE
    lot_code text;
    lot_day date;
BEGIN
    SELECT code, produced_on INTO lot_code, lot_day FROM nurseries_materiallot WHERE id = NEW.lot_id;
    IF NEW.dispatched_on < lot_day THEN
        RAISE EXCEPTION 'dispatch % of lot % is dated %, before the lot was produced (%)',
            NEW.code, lot_code, NEW.dispatched_on, lot_day
            USING ERRCODE = 'check_violation', CONSTRAINT = 'dispatch_dates_forward';
    END IF;
    PERFORM nurseries_check_outflow(NEW.lot_id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER nurseries_dispatch_rules AFTER INSERT OR UPDATE ON nurseries_dispatch
    FOR EACH ROW EXECUTE FUNCTION nurseries_dispatch_rules();

CREATE OR REPLACE FUNCTION nurseries_materiallot_rules() RETURNS trigger AS $$
DECLARE
    other text;
BEGIN
    PERFORM nurseries_check_outflow(NEW.id);
    SELECT p.code INTO other FROM nurseries_lotparent e JOIN nurseries_materiallot p ON p.id = e.parent_id
     WHERE e.child_id = NEW.id AND p.produced_on > NEW.produced_on LIMIT 1;
    IF other IS NULL THEN
        SELECT c.code INTO other FROM nurseries_lotparent e JOIN nurseries_materiallot c ON c.id = e.child_id
         WHERE e.parent_id = NEW.id AND c.produced_on < NEW.produced_on LIMIT 1;
    END IF;
    IF other IS NULL THEN
        SELECT d.code INTO other FROM nurseries_dispatch d WHERE d.lot_id = NEW.id AND d.dispatched_on < NEW.produced_on
         LIMIT 1;
    END IF;
    IF other IS NOT NULL THEN
        RAISE EXCEPTION 'lot % cannot be dated %: % would then run backwards in time', NEW.code, NEW.produced_on, other
            USING ERRCODE = 'check_violation', CONSTRAINT = 'materiallot_dates_forward';
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER nurseries_materiallot_rules AFTER UPDATE OF quantity, produced_on ON nurseries_materiallot
    FOR EACH ROW EXECUTE FUNCTION nurseries_materiallot_rules();

CREATE OR REPLACE FUNCTION nurseries_grafting_rules() RETURNS trigger AS $$
DECLARE
    plot_code text;
    plot_declared double precision;
    b_geom geometry;
    b_area double precision;
    b_from date;
    limit_ha double precision;
    others numeric;
    lot record;
BEGIN
    SELECT code, declared_area_ha INTO plot_code, plot_declared FROM plots_plot WHERE id = NEW.plot_id
        FOR NO KEY UPDATE;  -- serialises graftings of one plot for the area sum below
    SELECT geom, area_ha, valid_from INTO b_geom, b_area, b_from FROM plots_plotboundary
     WHERE plot_id = NEW.plot_id AND valid_from <= NEW.grafted_on
       AND (valid_to IS NULL OR valid_to > NEW.grafted_on)
     ORDER BY valid_from DESC, id DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'grafting %: plot % had no boundary in force on %', NEW.code, plot_code, NEW.grafted_on
            USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_plot_boundary_on_date';
    END IF;
    IF NEW.area IS NOT NULL THEN
        IF b_geom IS NULL THEN
            RAISE EXCEPTION 'grafting %: plot % was surveyed as a point on %, so a grafted sub-polygon cannot be checked',
                NEW.code, plot_code, NEW.grafted_on
                USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_area_within_plot';
        END IF;
        IF NOT ST_CoveredBy(NEW.area, b_geom) THEN
            RAISE EXCEPTION 'grafting %: the grafted area lies partly outside plot % (boundary in force on %, from %)',
                NEW.code, plot_code, NEW.grafted_on, b_from
                USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_area_within_plot';
        END IF;
        NEW.grafted_ha := round((ST_Area(NEW.area::geography, true) / 10000.0)::numeric, 4);
    END IF;
    IF NEW.budwood_lot_id IS NOT NULL THEN
        SELECT code, kind, clone_id, produced_on INTO lot FROM nurseries_materiallot WHERE id = NEW.budwood_lot_id;
        IF lot.kind <> 'budwood' THEN
            RAISE EXCEPTION 'grafting %: lot % is %, not budwood', NEW.code, lot.code, lot.kind
                USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_budwood_lot';
        END IF;
        IF lot.clone_id IS NOT NULL AND lot.clone_id <> NEW.clone_id THEN
            RAISE EXCEPTION 'grafting %: budwood lot % is of another clone', NEW.code, lot.code
                USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_budwood_lot';
        END IF;
        IF NEW.grafted_on < lot.produced_on THEN
            RAISE EXCEPTION 'grafting % on % uses budwood lot % cut later, on %', NEW.code, NEW.grafted_on, lot.code,
                lot.produced_on
                USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_dates_forward';
        END IF;
    END IF;
    limit_ha := COALESCE(b_area, plot_declared);
    IF limit_ha IS NULL THEN
        RAISE EXCEPTION 'grafting %: plot % has neither a measured nor a declared area to graft within',
            NEW.code, plot_code
            USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_within_plot_area';
    END IF;
    SELECT COALESCE(sum(grafted_ha), 0) INTO others FROM nurseries_grafting
     WHERE plot_id = NEW.plot_id AND id IS DISTINCT FROM NEW.id;
    IF others + NEW.grafted_ha > limit_ha + 0.00005 THEN
        RAISE EXCEPTION 'grafting %: % ha grafted on plot % would make % ha in all, more than its % ha',
            NEW.code, NEW.grafted_ha, plot_code, others + NEW.grafted_ha, round(limit_ha::numeric, 4)
            USING ERRCODE = 'check_violation', CONSTRAINT = 'grafting_within_plot_area';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER nurseries_grafting_rules BEFORE INSERT OR UPDATE ON nurseries_grafting
    FOR EACH ROW EXECUTE FUNCTION nurseries_grafting_rules();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS nurseries_grafting_rules ON nurseries_grafting;
DROP TRIGGER IF EXISTS nurseries_materiallot_rules ON nurseries_materiallot;
DROP TRIGGER IF EXISTS nurseries_dispatch_rules ON nurseries_dispatch;
DROP TRIGGER IF EXISTS nurseries_lotparent_outflow ON nurseries_lotparent;
DROP TRIGGER IF EXISTS nurseries_lotparent_rules ON nurseries_lotparent;
DROP FUNCTION IF EXISTS nurseries_grafting_rules();
DROP FUNCTION IF EXISTS nurseries_materiallot_rules();
DROP FUNCTION IF EXISTS nurseries_dispatch_rules();
DROP FUNCTION IF EXISTS nurseries_lotparent_outflow();
DROP FUNCTION IF EXISTS nurseries_lotparent_rules();
DROP FUNCTION IF EXISTS nurseries_check_outflow(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("nurseries", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
