-- Audit logs, second step (control store version 4, tenant store version 3):
-- indexes that answer combined filters. The action, actor and outcome indexes
-- used to hold their column and the entry number; now each also carries the
-- other two, so a query filtering on several of them checks them in the index
-- instead of fetching every candidate entry. (An entity id is selective on
-- its own; its index stays narrow, as it is the one every append touches at
-- a random place.) Statistics, refreshed by maintenance, let the planner start
-- from the most selective index.

DROP INDEX audit_by_action;
DROP INDEX audit_by_actor;
DROP INDEX audit_by_outcome;

CREATE INDEX audit_by_action ON audit_entries (action, seq, outcome, actor_id);
CREATE INDEX audit_by_actor ON audit_entries (actor_id, seq, action, outcome);
CREATE INDEX audit_by_outcome ON audit_entries (outcome, seq, action, actor_id);
