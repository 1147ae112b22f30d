/** The console's stylesheet (inline, under the page's CSP nonce). */
export const consoleStyles = `
body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center}
main{padding:20px;max-width:1200px;margin:auto}section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:14px;margin-bottom:16px}
h2{margin:0 0 10px;font-size:17px}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
input,select,button,textarea{font:inherit;padding:4px 7px;margin:2px}textarea{width:28em;height:4em}
.hidden{display:none}.err{color:#b00020}.msg{color:#0a5c8a}.muted{color:#6b7384}
.fields label{display:inline-block;margin:3px 10px 3px 0}.fields .sec{font-weight:600;margin-top:6px}
.copy{display:inline-block;margin:0 6px 2px 0;padding:0 5px;border-radius:3px;background:#eef0f3}
progress{width:110px;vertical-align:middle}#autosync label{margin-right:10px}
.s-online,.s-completed,.s-SUCCEEDED,.s-ok{color:#0a7d32}.s-failed,.s-FAILED,.s-INTERRUPTED{color:#b00020}.s-paused{color:#9a6700}
`;
