from tests.trails.fixtures import db_dir, ledger, own_store, project_id, settings, store

__all__ = ["db_dir", "ledger", "own_store", "project_id", "settings", "store"]
