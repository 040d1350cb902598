/* Line charts for the operator console's dashboard, drawn as SVG from /admin/api/series.
 *
 * No dependencies and no inline script: the page's CSP allows script files from this server
 * and fetches to it, nothing else. Each <figure class="chart"> names its series in
 * data-series (space-separated; "errors" means one line per endpoint) and their legend labels
 * in data-labels ("|"-separated). The counts refresh every 30 seconds.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var WIDTH = 600;
  var HEIGHT = 180;
  var PAD = { left: 40, right: 10, top: 10, bottom: 24 };
  var REFRESH_MS = 30000;
  var WINDOW_TEXT = { hour: "the last hour", day: "the last day" };

  function svgNode(name, attributes) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) {
      node.setAttribute(key, String(attributes[key]));
    });
    return node;
  }

  function clock(ms) {
    return new Date(ms).toISOString().slice(11, 16);
  }

  function niceMax(value) {
    if (value <= 4) { return 4; }
    var magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i += 1) {
      if (steps[i] * magnitude >= value) { return steps[i] * magnitude; }
    }
    return 10 * magnitude;
  }

  function linesOf(figure, data) {
    var names = figure.getAttribute("data-series").split(" ");
    if (names[0] === "errors") {
      return Object.keys(data.errors).map(function (route) {
        return { label: route, values: data.errors[route] };
      });
    }
    var labels = figure.getAttribute("data-labels").split("|");
    return names.map(function (name, i) {
      return { label: labels[i] || name, values: data.series[name] || [] };
    });
  }

  function draw(figure, data) {
    var lines = linesOf(figure, data);
    var points = data.series[Object.keys(data.series)[0]].length;
    var peak = 0;
    lines.forEach(function (line) {
      line.total = line.values.reduce(function (a, b) { return a + b; }, 0);
      peak = Math.max(peak, Math.max.apply(null, line.values.concat([0])));
    });
    var top = niceMax(peak);
    var plotW = WIDTH - PAD.left - PAD.right;
    var plotH = HEIGHT - PAD.top - PAD.bottom;
    var x = function (i) { return PAD.left + (points > 1 ? (i * plotW) / (points - 1) : 0); };
    var y = function (v) { return PAD.top + plotH - (v * plotH) / top; };
    var caption = figure.querySelector("figcaption").textContent;
    var summary = lines.length
      ? lines.map(function (l) { return l.label + " " + l.total; }).join(", ")
      : "none";
    var svg = svgNode("svg", {
      viewBox: "0 0 " + WIDTH + " " + HEIGHT,
      role: "img",
      "aria-label": caption + " in " + WINDOW_TEXT[data.window] + ": " + summary + "."
    });
    [0, top / 2, top].forEach(function (v) {
      svg.appendChild(svgNode("line", {
        "class": "grid", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v)
      }));
      var label = svgNode("text", {
        "class": "axis-label", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end"
      });
      label.textContent = String(v);
      svg.appendChild(label);
    });
    var endMs = data.end * 1000;
    var spanMs = points * data.step * 1000;
    [[0, "start"], [0.5, "middle"], [1, "end"]].forEach(function (tick) {
      var label = svgNode("text", {
        "class": "axis-label",
        x: PAD.left + tick[0] * plotW,
        y: HEIGHT - 6,
        "text-anchor": tick[1]
      });
      label.textContent = clock(endMs - spanMs * (1 - tick[0])) + (tick[0] === 1 ? " UTC" : "");
      svg.appendChild(label);
    });
    lines.forEach(function (line, n) {
      var path = line.values.map(function (v, i) {
        return (i ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      }).join(" ");
      svg.appendChild(svgNode("path", { "class": "line series-" + (n % 7), d: path }));
    });
    var plot = figure.querySelector(".chart-plot");
    plot.replaceChildren(svg);
    var legend = figure.querySelector(".legend");
    legend.replaceChildren();
    if (!lines.length) {
      var none = document.createElement("li");
      none.textContent = "None";
      legend.appendChild(none);
    }
    lines.forEach(function (line, n) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch series-" + (n % 7);
      swatch.setAttribute("aria-hidden", "true");
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(line.label + ": " + line.total));
      legend.appendChild(item);
    });
  }

  function start(root) {
    var status = root.querySelector("[data-chart-status]");
    var buttons = root.querySelectorAll("[data-window]");
    var current = "hour";

    function load() {
      var url = root.getAttribute("data-src") + "?window=" + encodeURIComponent(current);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          root.querySelectorAll("figure.chart").forEach(function (figure) {
            draw(figure, data);
          });
          root.setAttribute("data-loaded", data.window);
          var minutes = data.step / 60;
          status.textContent = "Counts per " + (minutes === 1 ? "minute" : minutes + " minutes") +
            " over " +
            WINDOW_TEXT[data.window] + ", updated " + clock(Date.now()) + " UTC.";
        })
        .catch(function (error) {
          status.textContent = "The charts could not be loaded (" + error.message + ").";
        });
    }

    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        current = button.getAttribute("data-window");
        buttons.forEach(function (other) {
          other.setAttribute("aria-pressed", String(other === button));
        });
        load();
      });
    });
    load();
    window.setInterval(load, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("charts");
    if (root) { start(root); }
  });
}());
