// smtplens web UI: the few buttons, each one call to the JSON API under /api/. No framework, no inline script.
"use strict";

function notice(text, isError) {
  const box = document.getElementById("notice");
  if (!box) return;
  box.textContent = text;
  box.className = isError ? "notice error" : "notice";
  box.hidden = false;
}

async function api(method, path, body) {
  const options = { method: method, headers: { "Accept": "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    const message = data && data.error ? data.error : response.status + " " + response.statusText;
    throw new Error(message);
  }
  return data;
}

function showMaintenance(button, enabled) {
  button.dataset.enabled = enabled ? "true" : "false";
  button.textContent = enabled ? "Maintenance: on" : "Maintenance: off";
  button.classList.toggle("on", enabled);
}

function setUpMaintenance() {
  const button = document.getElementById("maintenance");
  if (!button) return;
  button.addEventListener("click", async () => {
    const wanted = button.dataset.enabled !== "true";
    button.disabled = true;
    try {
      const state = await api("PUT", "/api/maintenance", { enabled: wanted });
      showMaintenance(button, state.enabled);
      notice(state.enabled ? "Maintenance on: new SMTP connections get 421." : "Maintenance off.", false);
    } catch (error) {
      notice("Maintenance: " + error.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

function setUpMessages() {
  for (const button of document.querySelectorAll("[data-delete-message]")) {
    button.addEventListener("click", async () => {
      if (!window.confirm("Delete this message?")) return;
      try {
        await api("DELETE", "/api/messages/" + encodeURIComponent(button.dataset.deleteMessage));
        window.location.assign("/messages");
      } catch (error) {
        notice("Delete: " + error.message, true);
      }
    });
  }
}

function setUpScenarios() {
  for (const box of document.querySelectorAll("[data-enable-scenario]")) {
    box.addEventListener("change", async () => {
      try {
        await api("PATCH", "/api/scenarios/" + encodeURIComponent(box.dataset.enableScenario), { enabled: box.checked });
        notice((box.checked ? "Enabled " : "Disabled ") + box.dataset.enableScenario + ".", false);
      } catch (error) {
        box.checked = !box.checked;
        notice("Scenario: " + error.message, true);
      }
    });
  }
  for (const button of document.querySelectorAll("[data-delete-scenario]")) {
    button.addEventListener("click", async () => {
      try {
        await api("DELETE", "/api/scenarios/" + encodeURIComponent(button.dataset.deleteScenario));
        window.location.reload();
      } catch (error) {
        notice("Scenario: " + error.message, true);
      }
    });
  }
  const preset = document.getElementById("add-preset");
  if (preset) {
    preset.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("POST", "/api/scenarios", { preset: preset.elements.preset.value });
        window.location.reload();
      } catch (error) {
        notice("Add preset: " + error.message, true);
      }
    });
  }
  const json = document.getElementById("add-json");
  if (json) {
    json.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("POST", "/api/scenarios", json.elements.spec.value);
        window.location.reload();
      } catch (error) {
        notice("Add scenario: " + error.message, true);
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpMaintenance();
  setUpMessages();
  setUpScenarios();
});
