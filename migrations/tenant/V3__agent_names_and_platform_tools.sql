-- V3: the platform tools as workspace tool permissions, and agent names kept slugs.

-- The platform tools every agent runtime offers, as workspace-wide tool permissions (enabled by
-- default), so every tenant, new or migrated, can see and restrict them. Fixed ids, the same
-- in every tenant: runtimes and docs may refer to them. Icons are Lucide icon names. OR IGNORE:
-- a tenant may already have a permission of the same name.
INSERT OR IGNORE INTO tool_permissions (id, name, description, enabled, icon, created_at, updated_at)
VALUES
    ('00000000-0000-7000-8000-000000000001', 'delegate_task',
     'Create a task for another agent (a report, or anyone when the workspace allows it) and be woken with its result.',
     1, 'share-2', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000002', 'finish_task',
     'Finish the current task with a result (completed, failed or blocked).',
     1, 'check-circle', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000003', 'send_message',
     'Send a chat message to another agent or to the humans of the workspace.',
     1, 'send', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000004', 'read_messages',
     'Read the messages sent to this agent.',
     1, 'inbox', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000005', 'post_board_item',
     'Post a status update, blocker, finding or request on the board.',
     1, 'clipboard-list', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000006', 'query_board',
     'Search the board items of the workspace.',
     1, 'search', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000007', 'list_agents',
     'List the agents of the organisation with their roles and place in the org chart.',
     1, 'users', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000008', 'get_task',
     'Read a task: its prompt, status, result and children.',
     1, 'file-text', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('00000000-0000-7000-8000-000000000009', 'update_task',
     'Add progress notes or context to a task the agent works on or delegated.',
     1, 'pencil', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- Agent names are slugs (^[a-z][a-z0-9-]*$, at most 64 characters): paths, mentions and tools
-- address agents by them, and readers rely on the shape. The API checks it; these triggers make
-- it hold for every writer (seeders, importers, the runtime) too.
CREATE TRIGGER agents_name_is_a_slug_on_insert BEFORE INSERT ON agents
WHEN NOT (new.name GLOB '[a-z]*' AND NOT new.name GLOB '*[^a-z0-9-]*' AND length(new.name) <= 64)
BEGIN
    SELECT RAISE(ABORT, 'agent name must be a lowercase slug of at most 64 characters');
END;

CREATE TRIGGER agents_name_is_a_slug_on_update BEFORE UPDATE OF name ON agents
WHEN NOT (new.name GLOB '[a-z]*' AND NOT new.name GLOB '*[^a-z0-9-]*' AND length(new.name) <= 64)
BEGIN
    SELECT RAISE(ABORT, 'agent name must be a lowercase slug of at most 64 characters');
END;
