// Sentinel's live feed on the device page and the fleet overview: opens the
// organization's WebSocket (/api/v1/orgs/{org}/live, same origin, the session
// cookie) and updates the page as events arrive. Everything it writes goes in
// through textContent: event data is never parsed as HTML.
"use strict";

(function () {
  const indicator = document.getElementById("live-status");
  if (!indicator || !window.WebSocket) {
    return;
  }
  const org = indicator.dataset.org;
  const device = indicator.dataset.device || null;
  const MAX_ACTIVITY = 20;
  let retry = 1000;

  function say(text, state) {
    indicator.textContent = text;
    indicator.dataset.state = state;
    indicator.hidden = false;
  }

  function setText(selector, text, root) {
    const element = (root || document).querySelector(selector);
    if (element) {
      element.textContent = text;
    }
    return element;
  }

  function setStatus(element, status) {
    if (!element) {
      return;
    }
    element.textContent = status;
    element.className = "status status-" + status;
  }

  function percent(value) {
    return typeof value === "number" ? value.toFixed(1) + " %" : null;
  }

  // A line in the device page's activity list, newest first.
  function activity(text) {
    const list = document.getElementById("live-activity");
    if (!list) {
      return;
    }
    const empty = list.querySelector(".empty");
    if (empty) {
      empty.remove();
    }
    const item = document.createElement("li");
    const time = document.createElement("time");
    time.textContent = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    item.append(time, " ", text);
    list.prepend(item);
    while (list.children.length > MAX_ACTIVITY) {
      list.lastElementChild.remove();
    }
  }

  function onDevicePage(event) {
    if (event.device_id !== device) {
      return;
    }
    switch (event.type) {
      case "telemetry": {
        setStatus(document.getElementById("device-status"), "online");
        setText("#device-last-seen", event.at);
        const count = document.getElementById("telemetry-count");
        if (count) {
          count.textContent = String(Number(count.textContent) + event.samples);
        }
        const cpu = percent(event.cpu_percent);
        const memory = percent(event.memory_percent);
        if (cpu) {
          setText("#chart-cpu strong", cpu);
        }
        if (memory) {
          setText("#chart-memory strong", memory);
        }
        activity(event.samples === 0
          ? "heartbeat"
          : "telemetry: " + event.samples + " sample(s)" + (cpu ? ", CPU " + cpu : "") +
            (memory ? ", memory " + memory : ""));
        break;
      }
      case "inventory":
        setText("#inventory-updated", event.packages + " packages, just now (reload for the list)");
        activity("inventory: " + event.packages + " packages");
        break;
      case "command": {
        const row = document.querySelector('tr[data-command="' + CSS.escape(event.command_id) + '"]');
        if (row) {
          const cell = row.querySelector(".command-status");
          if (cell && cell.firstChild && cell.firstChild.nodeType === Node.TEXT_NODE) {
            cell.firstChild.textContent = event.status;
          }
          if (event.exit_code !== null && event.exit_code !== undefined) {
            setText(".exit-code", String(event.exit_code), row);
          }
        }
        activity("command " + event.command_id + ": " + event.status +
          (event.exit_code !== null && event.exit_code !== undefined ? " (exit " + event.exit_code + ")" : ""));
        break;
      }
      case "uplink":
        activity("uplink on port " + event.f_port + ": " +
          (event.error ? "decoder error: " + event.error
            : event.data ? JSON.stringify(event.data) : "stored"));
        break;
      case "device_revoked":
        setStatus(document.getElementById("device-status"), "revoked");
        activity("revoked");
        break;
    }
  }

  function onFleetPage(event) {
    const row = document.querySelector('tr[data-device="' + CSS.escape(event.device_id) + '"]');
    switch (event.type) {
      case "telemetry":
        if (row) {
          setStatus(row.querySelector(".device-status .status"), "online");
          setText(".device-last-seen", event.at, row);
        }
        break;
      case "device_revoked":
        if (row) {
          setStatus(row.querySelector(".device-status .status"), "revoked");
        }
        break;
      case "device_enrolled": {
        const counter = document.getElementById("live-enrolled");
        if (counter) {
          const count = Number(counter.dataset.count || "0") + 1;
          counter.dataset.count = String(count);
          counter.textContent = count + " new device(s) enrolled since this page loaded: " +
            "reload to see them (latest: " + event.hostname + ")";
          counter.hidden = false;
        }
        break;
      }
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/api/v1/orgs/" + encodeURIComponent(org) + "/live");
    socket.addEventListener("open", function () {
      retry = 1000;
      say("Live", "open");
    });
    socket.addEventListener("message", function (message) {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      if (event.type === "lagged") {
        say("Live (" + event.missed + " updates missed: reload for the full picture)", "lagged");
        return;
      }
      if (device) {
        onDevicePage(event);
      } else {
        onFleetPage(event);
      }
    });
    socket.addEventListener("close", function (closed) {
      if (closed.code === 1008) {
        say("Live updates stopped: your session ended or your access changed. Reload the page.", "ended");
        return;
      }
      say("Reconnecting…", "closed");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  }

  connect();
})();
