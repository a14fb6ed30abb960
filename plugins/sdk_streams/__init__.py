"""SDK streams: end-user auth, card feeds, actions, SDK analytics, devices and real-time sockets
for web and mobile apps, with a dependency-free JavaScript SDK (``static/hub-sdk.js``)."""
