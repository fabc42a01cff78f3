"""All named scenarios, gathered from the scen_*.py theme modules (see layers.py for the DSL
and opexec.py for the operations)."""
import scen_copyup
import scen_io
import scen_lookup
import scen_meta
import scen_remove
import scen_rename
import scen_special

MODULES = [scen_lookup, scen_copyup, scen_remove, scen_rename, scen_meta, scen_special, scen_io]


def all_scenarios():
    out = []
    for m in MODULES:
        out.extend(m.S.items)
    return out
