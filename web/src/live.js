// The live event stream: one WebSocket, authenticated by the session
// cookie. A dropped connection reconnects with `since` set to the last
// event seen, so nothing is missed; the delay grows to 15 s while the
// server stays away.

export function connect({ onEvent, onStatus, onHello, onRefused }) {
  let since = null;
  let socket = null;
  let delay = 500;
  let stopped = false;
  let timer = null;

  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = since === null ? "" : `?since=${since}`;
    onStatus(since === null ? "connecting" : "reconnecting");
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws${query}`);
    let greeted = false;
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === "hello") {
        greeted = true;
        const first = since === null;
        since = event.seq;
        delay = 500;
        onStatus("live");
        onHello(first);
        return;
      }
      if (event.type === "status") {
        onStatus(event.database === "unavailable" ? "database" : "live");
        return;
      }
      if (typeof event.seq === "number") since = event.seq;
      onEvent(event);
    };
    socket.onclose = () => {
      socket = null;
      if (stopped) return;
      // Closed before it said hello: the server may have refused the
      // session (signed out elsewhere, deactivated, a guest's time up).
      if (!greeted) onRefused?.();
      onStatus("reconnecting");
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  open();
  return {
    send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    },
    close() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
}
