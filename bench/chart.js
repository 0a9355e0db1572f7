// A dependency-free horizontal bar chart (SVG) of speed-up ratios for the README.
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

export function renderSvg(rows) {
  const barH = 18, gap = 6, left = 360, width = 820, scaleW = width - left - 80;
  const max = Math.max(1, ...rows.map((r) => r.ratio));
  const height = 40 + rows.length * (barH + gap);
  const x = (v) => left + (Math.log2(1 + v) / Math.log2(1 + max)) * scaleW;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="20" font-weight="bold">deltasync speed-up vs anchor (higher is better; log scale; 1× = anchor)</text>`,
    `<line x1="${x(1)}" y1="28" x2="${x(1)}" y2="${height - 4}" stroke="#999" stroke-dasharray="3,3"/>`,
  ];
  rows.forEach((r, i) => {
    const y = 32 + i * (barH + gap);
    const label = `${r.op} · ${r.scenario} · ${r.tool} vs ${r.anchor}`;
    parts.push(`<text x="${left - 8}" y="${y + 13}" text-anchor="end">${esc(label)}</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(r.ratio) - left)}" height="${barH}" fill="${r.ratio >= 1 ? '#2a7ab0' : '#c0504d'}"/>`);
    parts.push(`<text x="${x(r.ratio) + 4}" y="${y + 13}">${r.ratio.toFixed(2)}×</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
