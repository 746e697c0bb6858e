// numpyvae course book: projection mode for the lectures.
//  - every code cell of a notebook page gets a "hide code" / "show code" button;
//  - the "projection" switch (or the key P, or ?projection=1 in the address) hides every
//    code cell, enlarges the text and the figures and removes the sidebars, so a slide
//    shows the figure and the equation.  The choice is kept for the next page.
(function () {
  "use strict";
  var KEY = "numpyvae-projection";

  function setProjection(on) {
    document.documentElement.classList.toggle("nv-projection", on);
    try { window.localStorage.setItem(KEY, on ? "1" : "0"); } catch (e) { /* private mode: not kept */ }
    var button = document.querySelector("button.nv-projection-switch");
    if (button) { button.textContent = on ? "leave projection" : "projection"; }
    document.querySelectorAll("button.nv-fold").forEach(function (fold) {
      var cell = fold.parentElement;
      var hidden = on ? !cell.classList.contains("nv-unfolded") : cell.classList.contains("nv-folded");
      fold.textContent = hidden ? "show code" : "hide code";
    });
  }

  function projectionWanted() {
    var asked = new URLSearchParams(window.location.search).get("projection");
    if (asked !== null) { return asked === "1"; }
    try { return window.localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }

  function setUp() {
    var cells = document.querySelectorAll("div.cell");
    if (!cells.length) { return; }               // not a lecture page
    cells.forEach(function (cell) {
      var input = cell.querySelector(":scope > div.cell_input");
      if (!input) { return; }
      var fold = document.createElement("button");
      fold.type = "button";
      fold.className = "nv-fold";
      fold.textContent = "hide code";
      fold.addEventListener("click", function () {
        var projecting = document.documentElement.classList.contains("nv-projection");
        if (projecting) {
          cell.classList.toggle("nv-unfolded");
        } else {
          cell.classList.toggle("nv-folded");
        }
        var hidden = projecting ? !cell.classList.contains("nv-unfolded") : cell.classList.contains("nv-folded");
        fold.textContent = hidden ? "show code" : "hide code";
      });
      cell.insertBefore(fold, input);
    });
    var button = document.createElement("button");
    button.type = "button";
    button.className = "nv-projection-switch";
    button.title = "hide the code cells and enlarge the figures (key P)";
    button.addEventListener("click", function () {
      setProjection(!document.documentElement.classList.contains("nv-projection"));
    });
    document.body.appendChild(button);
    document.addEventListener("keydown", function (event) {
      var tag = (event.target && event.target.tagName) || "";
      if ((event.key === "p" || event.key === "P") && !event.ctrlKey && !event.metaKey && !event.altKey &&
          tag !== "INPUT" && tag !== "TEXTAREA") {
        setProjection(!document.documentElement.classList.contains("nv-projection"));
      }
    });
    setProjection(projectionWanted());
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
