-- Retention (notification.retention): the oldest notifications and finished deliveries
-- are found by these indexes, and deleting a notification finds its deliveries (the
-- cascade, and the "no pending delivery" test) by notification_id.
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX notification_deliveries_finished ON notification_deliveries (created_at) WHERE state <> 'pending';
CREATE INDEX notification_deliveries_notification ON notification_deliveries (notification_id);
