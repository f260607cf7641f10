// Daily usage as a bar chart (Chart.js), from the JSON the page carries; the same figures are in the table.
(function () {
  var data = document.getElementById("usage-data");
  var canvas = document.getElementById("usage-chart");
  if (!data || !canvas || typeof Chart === "undefined") { return; }
  var chart = JSON.parse(data.textContent);
  // Colours distinguishable by most colour-blind readers (Okabe-Ito), all at least 3:1 against white.
  var palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8a6d00", "#56B4E9", "#000000"];
  var datasets = chart.datasets.map(function (set, i) {
    return { label: set.label, data: set.data, backgroundColor: palette[i % palette.length] };
  });
  new Chart(canvas, {
    type: "bar",
    data: { labels: chart.labels, datasets: datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: chart.unit } } },
      plugins: { legend: { display: datasets.length > 1 } }
    }
  });
})();
