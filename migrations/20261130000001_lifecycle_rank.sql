-- The latest-state order is (event time, lifecycle rank, provider event id):
-- two events of one second (whole-second event times make that common) are
-- decided by where their types stand in the lifecycle, `order.paid` after
-- `order.created` in either arrival order, and no longer by their ids. The
-- worker writes each event's rank from its event type's registry entry; the
-- rows already stored get the ranks that registry gave when this ran.
ALTER TABLE orders ADD COLUMN last_event_rank smallint NOT NULL DEFAULT 0;
ALTER TABLE disputes ADD COLUMN last_event_rank smallint NOT NULL DEFAULT 0;

UPDATE orders SET last_event_rank = CASE last_event_type
    WHEN 'order.updated' THEN 1
    WHEN 'order.paid' THEN 2
    WHEN 'order.refunded' THEN 3
    WHEN 'order.cancelled' THEN 3
    ELSE 0 END
WHERE last_event_type <> 'order.created';

UPDATE disputes SET last_event_rank = CASE last_event_type
    WHEN 'dispute.updated' THEN 1
    WHEN 'dispute.closed' THEN 2
    ELSE 0 END
WHERE last_event_type <> 'dispute.created';
