/* Hub's configuration UI for the Journey Builder custom activity and decision split.
 *
 * Journey Builder loads this page in an iframe and talks to it with Postmonger messages:
 * postMessage of JSON.stringify({e: event, a1: first argument, ...}) in both directions. The
 * page says "ready", receives "initActivity" (the activity), asks for the journey's schema and
 * tokens, and on Done sends "updateActivity" with the chosen flow and mapped variables as
 * inArguments (flowConfigId, then one argument per flow variable, named after it). No build step,
 * no dependency: the few lines of Postmonger's wire format it needs are written out below.
 */
(function () {
  "use strict";

  var isSplit = /\/split\/[^/]*$/.test(location.pathname);
  var handlers = {};
  var activity = null;
  var flows = [];
  var journeyFields = [];

  function trigger(event) {
    var message = { e: event };
    for (var i = 1; i < arguments.length; i++) message["a" + i] = arguments[i];
    window.parent.postMessage(JSON.stringify(message), "*");
  }

  function on(event, handler) { handlers[event] = handler; }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) return;
    var data;
    try { data = typeof event.data === "string" ? JSON.parse(event.data) : event.data; } catch (e) { return; }
    if (!data || !data.e || !handlers[data.e]) return;
    var args = [];
    for (var i = 1; ("a" + i) in data; i++) args.push(data["a" + i]);
    handlers[data.e].apply(null, args);
  });

  function $(id) { return document.getElementById(id); }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "hint error" : "hint";
  }

  function mergedInArguments(act) {
    var list = (act && act.arguments && act.arguments.execute && act.arguments.execute.inArguments) || [];
    var merged = {};
    list.forEach(function (item) {
      if (item && typeof item === "object") Object.keys(item).forEach(function (k) { merged[k] = item[k]; });
    });
    return merged;
  }

  function option(select, value, label) {
    var opt = document.createElement("option");
    opt.value = value;
    opt.textContent = label;
    select.appendChild(opt);
  }

  function selectedFlow() {
    var id = $("flow").value;
    return flows.filter(function (f) { return f.flowConfigId === id; })[0] || null;
  }

  function renderVariables(values) {
    var flow = selectedFlow();
    var rows = $("variable-rows");
    rows.textContent = "";
    $("variables").hidden = !flow || flow.variables.length === 0;
    $("flow-note").textContent = flow && !flow.sfmcAllowed
      ? "This flow does not allow SFMC to start it: enable its sfmc trigger in Hub." : "";
    if (!flow) return;
    flow.variables.forEach(function (variable) {
      var row = document.createElement("div");
      row.className = "variable";
      var label = document.createElement("label");
      var id = "var-" + variable.name;
      label.htmlFor = id;
      label.textContent = variable.name + " ";
      if (variable.required && !variable.hasDefault) label.className = "required";
      var type = document.createElement("span");
      type.className = "type";
      type.textContent = "(" + variable.type + ")";
      label.appendChild(type);
      var input = document.createElement("input");
      input.id = id;
      input.dataset.variable = variable.name;
      input.setAttribute("list", "journey-fields");
      input.placeholder = variable.hasDefault ? "flow default" : "{{Contact.Attribute...}}";
      input.value = values[variable.name] != null ? String(values[variable.name]) : "";
      input.addEventListener("input", changed);
      row.appendChild(label);
      row.appendChild(input);
      rows.appendChild(row);
    });
  }

  function complete() {
    if (isSplit) return true;
    var flow = selectedFlow();
    if (!flow) return false;
    return flow.variables.every(function (v) {
      if (!v.required || v.hasDefault) return true;
      var input = $("var-" + v.name);
      return input && input.value.trim() !== "";
    });
  }

  function changed() {
    $("done").disabled = !complete();
    trigger("setActivityDirtyState", true);
  }

  function chosenInArguments() {
    if (isSplit) {
      return [{ flowConfigId: $("split-flow").value }, { seenWithinDays: String($("seen-days").value || "30") }];
    }
    var list = [{ flowConfigId: $("flow").value }];
    Array.prototype.forEach.call(document.querySelectorAll("[data-variable]"), function (input) {
      if (input.value.trim() !== "") {
        var argument = {};
        argument[input.dataset.variable] = input.value.trim();
        list.push(argument);
      }
    });
    return list;
  }

  function onDone() {
    if (!activity || !complete()) return;
    var inArguments = chosenInArguments();
    activity.arguments = activity.arguments || {};
    activity.arguments.execute = activity.arguments.execute || {};
    activity.arguments.execute.inArguments = inArguments;
    activity.metaData = activity.metaData || {};
    activity.metaData.isConfigured = true;
    var flow = selectedFlow();
    if (!isSplit && flow) activity.name = "Hub: " + flow.name;
    // Hub keeps the arguments of a saved activity so that validate can check them.
    if (activity.id) {
      fetch("save", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ activityObjectID: activity.id, inArguments: inArguments }) })
        .catch(function () { /* Journey Builder's own save call follows; nothing is lost */ });
    }
    trigger("updateActivity", activity);
  }

  function onInitActivity(payload) {
    activity = payload || {};
    var values = mergedInArguments(activity);
    setStatus("Loading flows…");
    fetch("flows").then(function (response) {
      if (!response.ok) throw new Error("Hub answered " + response.status);
      return response.json();
    }).then(function (body) {
      flows = body.flows || [];
      var select = $(isSplit ? "split-flow" : "flow");
      flows.forEach(function (f) { option(select, f.flowConfigId, f.name + " (" + f.flowConfigId + ")"); });
      if (values.flowConfigId) select.value = values.flowConfigId;
      if (isSplit) {
        if (values.seenWithinDays) $("seen-days").value = values.seenWithinDays;
        $("split-form").hidden = false;
      } else {
        renderVariables(values);
        $("activity-form").hidden = false;
      }
      setStatus(flows.length ? "" : "No published flow yet: publish one in Hub first.", !flows.length);
      $("done").disabled = !complete();
    }).catch(function (error) {
      setStatus("Cannot load Hub's flows: " + error.message, true);
    });
  }

  function onSchema(payload) {
    journeyFields = ((payload && payload.schema) || []).map(function (field) { return field.key; });
    var list = $("journey-fields");
    list.textContent = "";
    journeyFields.forEach(function (key) {
      var opt = document.createElement("option");
      opt.value = "{{" + key + "}}";
      list.appendChild(opt);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (isSplit) {
      $("title").textContent = "Hub reachability split";
      $("subtitle").textContent = "Sends each contact down the branch that matches what Hub knows about them.";
      $("done").disabled = false;
    }
    $("flow").addEventListener("change", function () { renderVariables({}); changed(); });
    $("split-flow").addEventListener("change", changed);
    $("seen-days").addEventListener("input", changed);
    $("done").addEventListener("click", onDone);
    $("cancel").addEventListener("click", function () {
      trigger("setActivityDirtyState", false);
      trigger("requestInspectorClose");
    });
    on("initActivity", onInitActivity);
    on("requestedSchema", onSchema);
    on("requestedTokens", function (tokens) { window.hubJourneyTokens = tokens; });
    trigger("ready");
    trigger("requestSchema");
    trigger("requestTokens");
  });
}());
