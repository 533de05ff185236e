// Switchboard console: draws the charts (uPlot, vendored) from series.json
// and redraws them every 30 s. Everything else is htmx attributes in the
// pages; nothing here is inline, so the Content-Security-Policy allows
// scripts from this origin only.
(function () {
  "use strict";
  var palette = ["#0b5cad", "#c4432b", "#1a7f37", "#8250df", "#bf8700", "#0a7480", "#cf222e", "#6e7781"];

  function figureData(data, figure) {
    var columns = [data.times];
    data.servers.forEach(function (server) { columns.push(server[figure]); });
    return columns;
  }

  function options(data, figure, width, hours) {
    var series = [{}];
    data.servers.forEach(function (server, i) {
      series.push({ label: server.label, stroke: palette[i % palette.length], width: 2, spanGaps: false });
    });
    return {
      width: width,
      height: 240,
      series: series,
      axes: [{ stroke: getComputedStyle(document.body).color }, { stroke: getComputedStyle(document.body).color }],
      scales: {
        x: {
          time: true,
          range: function () {
            var now = Date.now() / 1000;
            return [now - hours * 3600, now];
          },
        },
        y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } },
      },
    };
  }

  var plots = {};

  function draw(container, data) {
    var hours = Number(container.getAttribute("data-hours")) || 3;
    container.querySelectorAll(".chart").forEach(function (element) {
      var figure = element.getAttribute("data-figure");
      var width = Math.max(280, element.clientWidth || 600);
      if (plots[figure]) { plots[figure].destroy(); }
      element.textContent = "";
      if (!data.times.length) {
        element.textContent = "No points yet: the health poller writes one per server and minute.";
        return;
      }
      plots[figure] = new uPlot(options(data, figure, width, hours), figureData(data, figure), element);
    });
  }

  function load(container) {
    fetch(container.getAttribute("data-series"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { draw(container, data); container.setAttribute("data-drawn", String(data.times.length)); })
      .catch(function (error) { container.setAttribute("data-error", String(error)); });
  }

  // An action htmx posts that is refused or fails answers with its message
  // for the flash area (HX-Retarget); htmx does not swap 4xx/5xx answers by
  // itself. Live refreshes (GET) keep htmx's rule: an error swaps nothing.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (detail.xhr.status >= 400 && detail.requestConfig && detail.requestConfig.verb === "post") {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("charts");
    if (!container || typeof uPlot === "undefined") { return; }
    load(container);
    setInterval(function () { load(container); }, 30000);
  });
})();
