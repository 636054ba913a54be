"""The lot-graph rules in the database, so that no write path (bulk loads, the
shell, a future service) can skip them. traceability.services checks the same
rules first with readable messages; these triggers are the backstop. Errors are
raised as check_violation (SQLSTATE 23514), which Django reports as an
IntegrityError; services turn it into a ValidationFailed naming the lot.

- acyclic: a lot → lot edge may not lead back to its source;
- dates forward: source lot date <= edge date <= target lot date;
- deliveries come from active plots of the lot's organization or of one of its
  registered suppliers (checked when a delivery is made or re-pointed, so a plot
  retired later keeps its history);
- mass conserved: what a lot passes on (sum of its outgoing kg) is at most
  (1 + 0.01) × the lesser of its weighed kg and what it received after conversion
  (sum of incoming kg × factor). 0.01 is traceability.models.MASS_TOLERANCE.
"""

from django.db import migrations

SQL = r"""
CREATE FUNCTION traceability_check_lot_balance(lot bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    l traceability_productlot%ROWTYPE;
    passed numeric;
    received numeric;
BEGIN
    SELECT * INTO l FROM traceability_productlot WHERE id = lot;
    IF NOT FOUND THEN RETURN; END IF;
    SELECT COALESCE(SUM(kg), 0) INTO passed FROM traceability_lotinput WHERE source_lot_id = lot;
    IF passed = 0 THEN RETURN; END IF;
    SELECT COALESCE(SUM(kg * factor), 0) INTO received FROM traceability_lotinput WHERE target_id = lot;
    IF passed > LEAST(l.kg, received) * 1.01 THEN
        RAISE EXCEPTION 'lot % passes on % kg but weighs % kg and received % kg after conversion (tolerance 1 %%)',
            l.code, passed, l.kg, round(received, 3) USING ERRCODE = 'check_violation';
    END IF;
END $$;

CREATE FUNCTION traceability_lotinput_rules() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    src traceability_productlot%ROWTYPE;
    tgt traceability_productlot%ROWTYPE;
    plot plots_plot%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM traceability_check_lot_balance(OLD.target_id);
        RETURN OLD;
    END IF;
    SELECT * INTO tgt FROM traceability_productlot WHERE id = NEW.target_id;
    IF NEW.date > tgt.date THEN
        RAISE EXCEPTION 'lot %: an input dated % is later than the lot (%)', tgt.code, NEW.date, tgt.date
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.source_plot_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.source_plot_id <> OLD.source_plot_id
                                           OR NEW.target_id <> OLD.target_id) THEN
        SELECT * INTO plot FROM plots_plot WHERE id = NEW.source_plot_id;
        IF plot.status <> 'active' THEN
            RAISE EXCEPTION 'lot %: plot % is retired and cannot deliver', tgt.code, plot.code
                USING ERRCODE = 'check_violation';
        END IF;
        IF plot.organization_id <> tgt.organization_id AND NOT EXISTS (
               SELECT 1 FROM traceability_organizationsupplier s
               WHERE s.organization_id = tgt.organization_id AND s.supplier_id = plot.organization_id) THEN
            RAISE EXCEPTION 'lot %: plot % belongs to another organization, neither the lot''s nor one of its '
                'suppliers', tgt.code, plot.code USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.source_lot_id IS NOT NULL THEN
        SELECT * INTO src FROM traceability_productlot WHERE id = NEW.source_lot_id;
        IF NEW.date < src.date THEN
            RAISE EXCEPTION 'lot %: taken from lot % on %, before that lot existed (%)', tgt.code, src.code,
                NEW.date, src.date USING ERRCODE = 'check_violation';
        END IF;
        -- UNION (not UNION ALL) so the walk ends even on a graph that already has a cycle.
        IF EXISTS (WITH RECURSIVE down(id) AS (
                       SELECT NEW.target_id
                       UNION
                       SELECT e.target_id FROM traceability_lotinput e JOIN down ON e.source_lot_id = down.id)
                   SELECT 1 FROM down WHERE id = NEW.source_lot_id) THEN
            RAISE EXCEPTION 'lot %: taking from lot % would make a cycle (% already descends from %)', tgt.code,
                src.code, src.code, tgt.code USING ERRCODE = 'check_violation';
        END IF;
        PERFORM traceability_check_lot_balance(NEW.source_lot_id);
    END IF;
    PERFORM traceability_check_lot_balance(NEW.target_id);
    IF TG_OP = 'UPDATE' AND OLD.target_id <> NEW.target_id THEN
        PERFORM traceability_check_lot_balance(OLD.target_id);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER traceability_lotinput_rules AFTER INSERT OR UPDATE OR DELETE ON traceability_lotinput
    FOR EACH ROW EXECUTE FUNCTION traceability_lotinput_rules();

CREATE FUNCTION traceability_productlot_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM traceability_lotinput WHERE target_id = NEW.id AND date > NEW.date)
       OR EXISTS (SELECT 1 FROM traceability_lotinput WHERE source_lot_id = NEW.id AND date < NEW.date) THEN
        RAISE EXCEPTION 'lot %: the date % would put it after one of its outputs or before one of its inputs',
            NEW.code, NEW.date USING ERRCODE = 'check_violation';
    END IF;
    PERFORM traceability_check_lot_balance(NEW.id);
    RETURN NEW;
END $$;

CREATE TRIGGER traceability_productlot_rules AFTER UPDATE OF kg, date ON traceability_productlot
    FOR EACH ROW EXECUTE FUNCTION traceability_productlot_rules();
"""

REVERSE = """
DROP TRIGGER IF EXISTS traceability_productlot_rules ON traceability_productlot;
DROP FUNCTION IF EXISTS traceability_productlot_rules();
DROP TRIGGER IF EXISTS traceability_lotinput_rules ON traceability_lotinput;
DROP FUNCTION IF EXISTS traceability_lotinput_rules();
DROP FUNCTION IF EXISTS traceability_check_lot_balance(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("traceability", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
