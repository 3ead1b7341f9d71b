import { render } from "preact";
render(<p>Entente</p>, document.getElementById("app"));
