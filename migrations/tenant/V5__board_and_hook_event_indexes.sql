-- Indexes for the lists of board items and hook events: newest first, with a cursor on
-- (time, id), optionally by session. Hook events arrive in bulk and are read by session.
CREATE INDEX board_items_by_created ON board_items (created_at, id);

DROP INDEX hook_events_by_time;
CREATE INDEX hook_events_by_time ON hook_events (received_at, id);
CREATE INDEX hook_events_by_session ON hook_events (session_id, received_at, id);
