"""push_fcm: push notifications to Android, web (and optionally iOS) devices through FCM HTTP v1."""
