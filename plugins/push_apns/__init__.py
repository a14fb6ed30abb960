"""push_apns: push notifications to iOS devices through the Apple Push Notification service."""
